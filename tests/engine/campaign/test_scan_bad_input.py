"""Bad input to the scan: each a one-line error naming the file and the fix, or a counted skip."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from engine.campaign import load_skipped
from engine.campaign.scan import ScanOptions, scan_campaign, scan_to_folder
from engine.cli import main
from engine.errors import ConfigError, DatasetError, ImageFileError
from tests.engine.campaign.helpers import audiomoth_file, plain_wav

NOW = datetime(2026, 12, 4, tzinfo=UTC)


def _sites(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sites.csv"
    path.write_text(text)
    return path


def _moth(folder: Path, *stamps: tuple[int, ...], device: str = "24F319055FDF2F5B") -> list[Path]:
    return [audiomoth_file(folder, datetime(*s, tzinfo=UTC), device) for s in stamps]


def test_sites_table_missing_column_is_named(tmp_path: Path) -> None:
    sites = _sites(tmp_path, "site,longitude\nA,10.0\n")
    with pytest.raises(DatasetError, match=r"sites.csv: missing column\(s\) latitude") as err:
        scan_campaign(ScanOptions(tmp_path, sites_table=sites))
    assert "\n" not in str(err.value)
    semi = _sites(tmp_path, "site;lon\nA;10,5\n")  # a spreadsheet's ';' CSV: the delimiter is found
    with pytest.raises(DatasetError, match=r"missing column\(s\) latitude .*delimiter ';'"):
        scan_campaign(ScanOptions(tmp_path, sites_table=semi))


def test_semicolon_table_with_decimal_commas_is_read(tmp_path: Path) -> None:
    _moth(tmp_path / "rec" / "A", (2019, 5, 22, 6, 30))
    sites = _sites(tmp_path, "Site;Longitude;Latitude\nA;10,5;53,25\n")
    result = scan_campaign(ScanOptions(tmp_path / "rec", sites_table=sites), now=NOW)
    assert [(s.name, s.lon, s.lat) for s in result.campaign.sites] == [("A", 10.5, 53.25)]


@pytest.mark.parametrize("row", ["A,200.0,50.0", "A,10.0,-95.0", "A,ten,50.0"])
def test_impossible_coordinate_names_the_row(tmp_path: Path, row: str) -> None:
    sites = _sites(tmp_path, f"site,longitude,latitude\nB,10.0,50.0\n{row}\n")
    with pytest.raises(DatasetError, match="sites.csv: row 3: .*longitude"):
        scan_campaign(ScanOptions(tmp_path, sites_table=sites))


def test_bad_timezone_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--timezone: unknown time zone 'Mars/Olympus'"):
        scan_campaign(ScanOptions(tmp_path, timezone="Mars/Olympus"))
    sites = _sites(tmp_path, "site,longitude,latitude,timezone\nA,10,50,Europe/Atlantis\n")
    with pytest.raises(ConfigError, match="sites.csv row 2: unknown time zone"):
        scan_campaign(ScanOptions(tmp_path, sites_table=sites))


def test_each_bad_file_is_a_counted_skip(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    good = _moth(rec / "A", (2019, 5, 22, 6, 30), (2019, 5, 22, 7, 30))
    _moth(rec / "A", (2099, 1, 1, 0, 0))  # clock in the future
    _moth(rec / "A", (1970, 1, 1, 0, 0))  # clock reset to 1970
    (rec / "A" / "CONFIG.TXT").write_text("Device ID : 24F319055FDF2F5B\n")
    (rec / "A" / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    plain_wav(rec / "A" / "S4A00001_20190522_080000.wav", rate=4000)  # below 8 kHz
    plain_wav(rec / "A" / "S4A00001_20190522_090000.wav", seconds=0.2)  # too short
    (rec / "A" / "S4A00001_20190522_100000.wav").write_bytes(b"RIFF garbage")  # unreadable
    plain_wav(rec / "A" / "field notes.wav")  # no time in the name or metadata
    shutil.copytree(rec / "A", rec / "A-backup", ignore=shutil.ignore_patterns("*.TXT", "*.jpg", "S4A*", "field*"))
    plain_wav(rec / "nowhere" / "S4A00002_20190522_080000.wav")  # no position: not in the sites table
    sites = _sites(tmp_path, "site,longitude,latitude,recorder\nA,10,50,S4A00001\nA-backup,10,50,\n")

    result = scan_to_folder(ScanOptions(rec, sites_table=sites, timezone="Europe/Berlin"), tmp_path / "out", now=NOW)
    reasons = result.summary["skipped_by_reason"]
    assert reasons == {"not audio": 2, "unreadable": 1, "sample rate below 8 kHz": 1, "too short": 1, "no time": 1,
                       "clock implausible": 4, "no position": 1, "duplicate": 2}
    assert [r.path for r in result.campaign.recordings] == good
    skipped = dict(load_skipped(tmp_path / "out"))
    assert skipped["A/20990101_000000.WAV"] == "clock implausible"
    assert skipped["A/19700101_000000.WAV"] == "clock implausible"
    assert skipped["A-backup/20190522_063000.WAV"] == "duplicate"
    assert skipped["nowhere/S4A00002_20190522_080000.wav"] == "no position"
    assert result.summary["files"] == result.summary["usable"] + result.summary["skipped"] == 15


def test_site_without_files_and_imagery_covering_none_are_warnings(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    _moth(rec / "A", (2019, 5, 22, 6, 30))
    sites = _sites(tmp_path, "site,longitude,latitude\nA,10,50\nEmpty,11,51\n")
    tif = tmp_path / "far.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8", crs="EPSG:32618",
                       transform=from_origin(200000, 2700000, 30, 30)) as dst:
        dst.write(np.zeros((1, 8, 8), np.uint8))
    result = scan_campaign(ScanOptions(rec, sites_table=sites, imagery=(tif,)), now=NOW)
    summary = result.summary
    assert summary["sites_without_files"] == ["Empty"]
    assert summary["outside_imagery"] == ["A"]
    warnings = summary["warnings"]
    assert any(w.startswith(f"{tif}: covers none of the 1 sites") for w in warnings)
    assert any("1 site(s) without any usable file: Empty" in w for w in warnings)


def test_unreadable_or_ungeoreferenced_imagery_is_an_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00 not really a tiff")
    with pytest.raises(ImageFileError, match="broken.tif: unreadable"):
        scan_campaign(ScanOptions(tmp_path, imagery=(broken,)))
    plain = tmp_path / "plain.tif"
    with rasterio.open(plain, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8") as dst:
        dst.write(np.zeros((1, 4, 4), np.uint8))
    with pytest.raises(ImageFileError, match="plain.tif: not georeferenced"):
        scan_campaign(ScanOptions(tmp_path, imagery=(plain,)))


def test_two_recorders_at_one_site_at_once_are_a_warning_and_both_kept(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    _moth(rec / "A" / "first", (2019, 5, 22, 6, 30), (2019, 5, 22, 8, 0))
    _moth(rec / "A" / "second", (2019, 5, 22, 6, 30, 1), device="24F31905AAAAAAAA")  # overlaps 06:30
    result = scan_campaign(ScanOptions(rec, sites_table=_sites(tmp_path, "site,longitude,latitude\nA,10,50\n")),
                           now=NOW)
    assert len(result.campaign.recordings) == 3
    assert result.summary["overlapping_recorders"] == {"A": 1}
    assert any("site A: 1 pair(s)" in w for w in result.summary["warnings"])


def test_files_table_and_recorder_windows(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    _moth(rec / "card1", (2019, 5, 22, 6, 30), (2019, 6, 10, 6, 30))  # one recorder moved between sites
    plain_wav(rec / "loose" / "S4A00009_20190522_080000.wav")
    sites = _sites(tmp_path, "site,longitude,latitude,recorder,start,end\n"
                             "May,10,50,24F319055FDF2F5B,2019-05-01,2019-06-01\n"
                             "June,11,51,24F319055FDF2F5B,2019-06-01,2019-07-01\n")
    files = tmp_path / "files.csv"
    files.write_text("path,longitude,latitude,site\nS4A00009_20190522_080000.wav,12.5,52.5,Loose\n")
    result = scan_campaign(ScanOptions(rec, sites_table=sites, files_table=files), now=NOW)
    got = {(r.site, r.position_source, r.lon) for r in result.campaign.recordings}
    assert got == {("May", "sites", 10.0), ("June", "sites", 11.0), ("Loose", "files", 12.5)}


def test_cli_prints_a_summary_and_fails_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rec = tmp_path / "rec"
    _moth(rec / "A", (2019, 5, 22, 6, 30))
    good = _sites(tmp_path, "site,longitude,latitude\nA,10,50\n")
    assert main(["campaign", "scan", "--recordings", str(rec), "--sites", str(good), "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "1 usable file(s) of 1 at 1 site(s)" in out and f"campaign written to {tmp_path / 'c'}" in out
    assert "lowest battery 4.2 V (24F319055FDF2F5B), temperature 18.3 to 18.3 C" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("site,lon\nA,10\n")
    assert main(["campaign", "scan", "--recordings", str(rec), "--sites", str(bad), "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad}: missing column(s) latitude") and "\n" not in err
    assert not (tmp_path / "d").exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.docx").write_text("x")
    assert main(["campaign", "scan", "--recordings", str(rec), "--sites", str(good), "--out", str(tmp_path / "busy")]) == 2
    assert "is not a campaign folder" in capsys.readouterr().err


def test_linked_folders_are_walked_once_and_kept_relative(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    _moth(rec / "A", (2019, 5, 22, 6, 30))
    (rec / "A" / "loop").symlink_to(rec)  # a link back up: must not walk forever
    _moth(tmp_path / "elsewhere" / "B", (2019, 5, 22, 6, 30), device="24F31905BBBBBBBB")
    (rec / "B").symlink_to(tmp_path / "elsewhere" / "B")  # a card mounted elsewhere, linked in
    sites = _sites(tmp_path, "site,longitude,latitude\nA,10,50\nB,11,51\n")
    scan_to_folder(ScanOptions(rec, sites_table=sites), tmp_path / "c", now=NOW)
    lines = (tmp_path / "c" / "recordings.csv").read_text().splitlines()[1:]
    assert sorted(line.split(",")[0] for line in lines) == ["A/20190522_063000.WAV", "B/20190522_063000.WAV"]


def test_same_name_and_size_is_a_duplicate_only_when_the_bytes_match(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    first = plain_wav(rec / "A" / "20190522_063000.WAV")  # AudioMoth names without the comment
    (rec / "A-copy").mkdir()
    shutil.copy(first, rec / "A-copy" / first.name)  # the same bytes in a backup folder
    other = plain_wav(rec / "B" / "20190522_063000.WAV")  # another site, same schedule: same name and size
    data = bytearray(other.read_bytes())
    data[len(data) // 2] ^= 0x01  # other audio (one sample differs in the middle)
    other.write_bytes(bytes(data))
    sites = _sites(tmp_path, "site,longitude,latitude\nA,10,50\nA-copy,10,50\nB,11,51\n")
    result = scan_campaign(ScanOptions(rec, sites_table=sites), now=NOW)
    assert sorted(r.site for r in result.campaign.recordings) == ["A", "B"]
    assert result.skipped == [("A-copy/20190522_063000.WAV", "duplicate")]


def test_without_a_sites_row_the_site_is_the_nearest_place_folder(tmp_path: Path) -> None:
    from engine.campaign.writers import write_guano_wav
    from tests.engine.campaign.helpers import tone

    rec = tmp_path / "rec"
    for site, serial, lon in (("Marsh", "S4A00001", 10.0), ("Ridge", "S4A00002", 11.0)):
        (rec / site / "Data").mkdir(parents=True)
        write_guano_wav(rec / site / "Data" / f"{serial}_20190522_063000.wav", tone(2.0, 16000), 16000,
                        {"Loc Position": (50.0, lon), "Serial": serial})
    loose = rec / "Data"
    loose.mkdir()
    write_guano_wav(loose / "S4A00003_20190522_063000.wav", tone(2.0, 16000), 16000,
                    {"Loc Position": (50.0, 12.0), "Serial": "S4A00003"})
    result = scan_campaign(ScanOptions(rec, timezone="+01:00"), now=NOW)
    assert sorted((r.site, r.recorder, r.lon) for r in result.campaign.recordings) == [
        ("Marsh", "S4A00001", 10.0), ("Ridge", "S4A00002", 11.0), ("S4A00003", "S4A00003", 12.0)]
    assert result.summary["overlapping_recorders"] == {}


def test_compressed_recordings_are_scanned_and_a_broken_one_is_unreadable(tmp_path: Path) -> None:
    """MP3 and Ogg copies (libsndfile reads them) are recordings like WAV; only what no decoder reads is
    skipped, as "unreadable", never as "not audio"."""
    import soundfile as sf

    rec = tmp_path / "rec" / "A"
    rec.mkdir(parents=True)
    tone = (0.3 * np.sin(np.arange(16000 * 4) / 7)).astype(np.float32)
    sf.write(rec / "S4A00001_20190522_080000.mp3", tone, 16000, format="MP3")
    sf.write(rec / "S4A00001_20190522_090000.ogg", tone, 16000, format="OGG")
    (rec / "S4A00001_20190522_100000.mp3").write_bytes(b"ID3 not really an mp3")
    sites = _sites(tmp_path, "site,longitude,latitude\nA,10,50\n")
    result = scan_campaign(ScanOptions(tmp_path / "rec", sites_table=sites, timezone="Europe/Berlin"), now=NOW)
    assert sorted(r.path.name for r in result.campaign.recordings) == ["S4A00001_20190522_080000.mp3",
                                                                       "S4A00001_20190522_090000.ogg"]
    assert [round(r.duration_s, 1) for r in result.campaign.recordings] == [4.0, 4.0]
    assert result.summary["skipped_by_reason"] == {"unreadable": 1}
