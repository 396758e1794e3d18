"""The generated campaign: real recorder shapes, a daily cycle, and a scan that finds what was generated."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
import soundfile as sf
from metamoth import parse_metadata

from engine.campaign import load_campaign
from engine.campaign.demo import generate_campaign
from engine.campaign.demo_sounds import synthesise_at_hour
from engine.campaign.scan import ScanOptions, scan_to_folder
from engine.cli import main
from engine.demo_world.birds import world_species
from engine.demo_world.config import LAYER, LAYERS
from engine.errors import ConfigError, DatasetError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "campaign-demo"
    summary = generate_campaign(out, sites=4, files_per_site=3, file_seconds=5.0, seed=3, world="tiny", workers=1)
    assert summary.files == 12 and summary.sites == 4
    return out


def test_files_are_in_the_recorders_shapes(tiny: Path) -> None:
    truth = list(csv.DictReader(open(tiny / "truth.csv")))
    kinds = {row["kind"] for row in truth}
    assert kinds == {"audiomoth", "song-meter-guano", "song-meter"}
    for row in truth:
        path = tiny / "recordings" / row["path"]
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
        assert info.duration == pytest.approx(5.0)
        if row["kind"] == "audiomoth":
            meta = parse_metadata(path)  # metamoth's own reader accepts our AudioMoth header
            assert meta.audiomoth_id == row["recorder"]
            assert meta.datetime.replace(tzinfo=UTC) == datetime.fromisoformat(row["start_utc"])
            assert path.name == meta.datetime.strftime("%Y%m%d_%H%M%S.WAV")
        else:
            local = datetime.fromisoformat(row["start_local"])
            assert path.name == f"{row['recorder']}_{local:%Y%m%d_%H%M%S}.wav"
    assert (tiny / "recordings" / "site-01" / "CONFIG.TXT").is_file()
    with rasterio.open(tiny / "imagery" / "ortho.tif") as ds:
        assert ds.crs.to_epsg() == 32632 and ds.count == 3
    assert "site,longitude,latitude,recorder,timezone" == (tiny / "sites.csv").read_text().splitlines()[0]


def test_scan_finds_the_sites_and_times_that_were_generated(tiny: Path, tmp_path: Path) -> None:
    result = scan_to_folder(ScanOptions(tiny / "recordings", sites_table=tiny / "sites.csv",
                                        imagery=(tiny / "imagery" / "ortho.tif",)), tmp_path / "scan")
    campaign = load_campaign(tmp_path / "scan")
    truth = {row["path"]: row for row in csv.DictReader(open(tiny / "truth.csv"))}
    got = {rec.path.relative_to(tiny / "recordings").as_posix(): rec for rec in campaign.recordings}
    assert set(got) == set(truth)
    for path, row in truth.items():
        rec = got[path]
        assert rec.site == row["site"] and rec.recorder == row["recorder"]
        assert rec.start_utc == datetime.fromisoformat(row["start_utc"])
        assert rec.start_local.isoformat() == row["start_local"]
        assert (rec.lon, rec.lat) == pytest.approx((float(row["longitude"]), float(row["latitude"])), abs=1e-6)
        assert rec.position_source == ("guano" if row["kind"] == "song-meter-guano" else "sites")
        assert rec.timezone == "Europe/Berlin"
    assert result.summary["skipped_by_reason"] == {"not audio": 2 + 1}  # CONFIG.TXT x2, a Song Meter summary
    assert result.summary["outside_imagery"] == [] and all(s.in_imagery for s in campaign.sites)


def test_daily_cycle_dawn_chorus_and_night_frogs() -> None:
    species = world_species(np.random.default_rng([0, 0xB1D]))

    def band_rms(name: str, hour: float, lo: float, hi: float) -> float:
        audible = np.zeros(len(LAYERS), np.float32)
        audible[LAYER[name]] = 0.9
        y = synthesise_at_hour(0, 7, audible, 8.0, 22050, species, hour)
        spec = np.abs(np.fft.rfft(y)) ** 2
        f = np.fft.rfftfreq(y.size, 1 / 22050)
        return float(np.sqrt(spec[(f >= lo) & (f < hi)].sum()))

    # Birdsong (2-8 kHz) in a broadleaf wood: the dawn chorus is far louder than the middle of the night.
    assert band_rms("forest_broadleaf", 5.5, 2000, 8000) > 3 * band_rms("forest_broadleaf", 1.0, 2000, 8000)
    # Frogs (400-1100 Hz and harmonics) at a wetland are louder at night than at noon.
    assert band_rms("wetland", 23.0, 350, 1200) > band_rms("wetland", 12.0, 350, 1200)
    # A road: rush hour louder than 3 am.
    assert band_rms("road", 8.0, 50, 2000) > 3 * band_rms("road", 3.0, 50, 2000)


def test_bad_requests_fail_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ConfigError, match="--files-per-site"):
        generate_campaign(tmp_path / "x", files_per_site=0)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "a").write_text("x")
    with pytest.raises(DatasetError, match="not empty"):
        generate_campaign(tmp_path / "busy")
    assert main(["demo-world", "--campaign", "--out", str(tmp_path / "y"), "--file-seconds", "0"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: --file-seconds: 0 s")
