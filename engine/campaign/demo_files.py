"""One generated site's recorder files (a worker task of ``engine.campaign.demo``; torch-free)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from engine.campaign.demo_sounds import synthesise_at_hour
from engine.campaign.writers import (
    audiomoth_comment,
    audiomoth_name,
    song_meter_name,
    write_audiomoth_wav,
    write_guano_wav,
)
from engine.demo_world.birds import Species

TIMEZONE = "Europe/Berlin"  # the demo world lies on the Baltic coast of Schleswig-Holstein
AUDIOMOTH_CONFIG = """Device ID                       : {id}
Firmware                        : AudioMoth-Firmware-Basic (1.8.1)
Time zone                       : UTC
Sample rate (Hz)                : {rate}
Gain                            : Medium
Sleep duration (s)              : {sleep}
Recording duration (s)          : {seconds}
"""


@dataclass(frozen=True)
class DemoSite:
    name: str
    kind: str  # 'audiomoth' | 'song-meter-guano' | 'song-meter'
    recorder: str
    folder: str  # relative to recordings/
    lon: float
    lat: float


@dataclass(frozen=True)
class SiteTask:
    seed: int
    index: int
    site: DemoSite
    audibility: np.ndarray
    starts_utc: tuple[datetime, ...]
    seconds: float
    rate: int
    species: dict[str, tuple[Species, ...]]
    recordings: Path


def make_site_files(task: SiteTask) -> list[dict[str, str]]:
    """Write the site's files; return the truth rows (path relative to recordings/, site, times...)."""
    site, tz = task.site, ZoneInfo(TIMEZONE)
    folder = task.recordings / site.folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([task.seed, task.index, 0xF11E])
    rows = []
    for k, start in enumerate(task.starts_utc):
        local = start.astimezone(tz)
        samples = synthesise_at_hour(task.seed, task.index * 10_000 + k, task.audibility, task.seconds, task.rate,
                                     task.species, local.hour + local.minute / 60)
        if site.kind == "audiomoth":
            name = audiomoth_name(start)
            comment = audiomoth_comment(start, site.recorder, gain=2, battery_v=round(4.5 - 0.05 * k, 1),
                                        temperature_c=round(12 + 8 * np.sin(np.pi * (local.hour - 6) / 12)
                                                            + rng.normal(0, 0.5), 1))
            write_audiomoth_wav(folder / name, samples, task.rate, comment, site.recorder)
        elif site.kind == "song-meter-guano":
            name = song_meter_name(site.recorder, local)
            write_guano_wav(folder / name, samples, task.rate, {
                "Timestamp": local, "Loc Position": (site.lat, site.lon), "Serial": site.recorder,
                "Make": "Wildlife Acoustics, Inc.", "Model": "SM4", "Firmware Version": "2.4.0"})
        else:
            name = song_meter_name(site.recorder, local)
            samples16 = np.round(np.clip(samples, -1.0, 32767 / 32768) * 32768).astype(np.int16)
            import soundfile as sf

            sf.write(folder / name, samples16, task.rate, subtype="PCM_16", format="WAV")
        rel = f"{site.folder}/{name}"
        rows.append({"path": rel, "site": site.name, "recorder": site.recorder, "kind": site.kind,
                     "longitude": f"{site.lon:.6f}", "latitude": f"{site.lat:.6f}",
                     "start_utc": start.isoformat().replace("+00:00", "Z"), "start_local": local.isoformat()})
    # What real recorders leave beside their audio: the scan skips these as "not audio".
    if site.kind == "audiomoth":
        gap = (task.starts_utc[1] - task.starts_utc[0]).total_seconds() if len(task.starts_utc) > 1 else 0
        (folder / "CONFIG.TXT").write_text(AUDIOMOTH_CONFIG.format(id=site.recorder, rate=task.rate,
                                                                   sleep=int(gap - task.seconds),
                                                                   seconds=int(task.seconds)))
    elif site.kind == "song-meter":
        (folder.parent / f"{site.recorder}_Summary.txt").write_text("DATE,TIME,LAT,,LON,,POWER(V),TEMP(C),#FILES,\n")
    return rows
