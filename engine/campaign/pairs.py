"""A recorder campaign as a pair source for training and evaluation (torch-free).

:class:`CampaignSource` presents one record per site, with the interface of
:class:`engine.data.source.PairSource`: ``image(i)`` is the site's chip cut from the campaign's imagery
(:mod:`engine.campaign.chips`) and ``log_mel(i)`` the site's fixed evaluation windows
(:mod:`engine.campaign.windows`); ``training_log_mel(i, rng)`` draws a random window of the site's hours for
a training sample. Splits are by site (:mod:`engine.campaign.site_splits`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.audio import FrontEndConfig
from engine.campaign.chips import SiteChips, cached_site_chips
from engine.campaign.site_splits import split_sites
from engine.campaign.table import load_campaign
from engine.campaign.windows import SiteFile, draw_window, fixed_windows, window_log_mel, windows_log_mel
from engine.config.data import DataConfig
from engine.data.records import PairRecord, SkipReport
from engine.errors import ConfigError, DatasetError
from engine.progress import Job

log = logging.getLogger(__name__)
LAYOUT = "campaign"


@dataclass
class CampaignSource:
    """A campaign's usable sites (one record each), their splits, chips and recordings."""

    root: Path
    records: list[PairRecord]
    splits: list[str]
    split_rule: str
    report: SkipReport
    data_cfg: DataConfig
    front_end: FrontEndConfig
    table: Path
    files: list[list[SiteFile]]
    chips: SiteChips
    chip_ground_m: float
    layout: str = LAYOUT
    audio_source: str = "audio"
    _eval_mels: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def kind(self) -> str:
        return LAYOUT

    @property
    def image_ground_m(self) -> float:
        """The ground width of a whole "source image": the chip is the central ``image_region`` of it."""
        return self.chip_ground_m / self.data_cfg.image_region

    def indices(self, split: str | None) -> list[int]:
        if split in (None, "all"):
            return list(range(len(self.records)))
        return [i for i, s in enumerate(self.splits) if s == split]

    def image(self, i: int) -> np.ndarray:
        """Site i's chip, (stored_size, stored_size, 3) uint8."""
        return np.asarray(self.chips.chip(self.records[i].key))

    def eval_windows(self, i: int) -> list:
        """Site i's fixed evaluation windows (see :mod:`engine.campaign.windows`)."""
        return fixed_windows(self.files[i], self.front_end.chunk_seconds, self.data_cfg.eval_windows,
                             self.records[i].key)

    def log_mel(self, i: int) -> np.ndarray:
        """Site i's evaluation sound: its fixed windows side by side (one chunk each), kept in memory."""
        if i not in self._eval_mels:
            self._eval_mels[i] = windows_log_mel(self.eval_windows(i), self.front_end)
        return self._eval_mels[i]

    def training_log_mel(self, i: int, rng: np.random.Generator) -> np.ndarray:
        """A random window of site i's audio, ``audio_crop_seconds`` long, normalised."""
        window = draw_window(self.files[i], self.data_cfg.audio_crop_seconds, rng, self.records[i].key)
        return window_log_mel(window, self.front_end)


def open_campaign_source(path: str | Path, data_cfg: DataConfig, front_end: FrontEndConfig, chip_ground_m: float,
                         cache_root: Path, split_seed: int = 0, job: Job | None = None) -> CampaignSource:
    """Read a campaign folder, cut (or reuse) its chips and split its sites.

    Sites without usable recordings or outside every image are skipped and counted.

    Args:
        path: the campaign folder (or its campaign.json).
        data_cfg: chip size (``stored_size``), windows (``audio_crop_seconds``, ``eval_windows``), splits
            (``block_km``, ``holdout_sites``).
        front_end: the audio front-end.
        chip_ground_m: the chips' ground width in metres.
        cache_root: where the chips are cached.
    Raises:
        DatasetError: an unreadable campaign, no imagery, or fewer than 2 usable sites.
        ConfigError: unknown ``--holdout-sites`` names.
    """
    campaign = load_campaign(Path(path))
    if not campaign.imagery:
        raise DatasetError(campaign.root, "has no imagery to cut the sites' image chips from",
                           "scan the campaign again with --imagery ORTHO.tif")
    if not chip_ground_m or chip_ground_m <= 0:
        raise ConfigError("data.ground_size_m", "unknown for this run, so the chips' ground size is not known",
                          "give --ground-size-m, start from a run with --init, or set it in the preset")
    by_site = campaign.by_site()
    sites = campaign.sites
    report = SkipReport(len(sites))
    usable = []
    for site in sites:
        files = [SiteFile(r.path, r.duration_s) for r in by_site.get(site.name, []) if r.duration_s > 0]
        if not files:
            report.skip("no recordings", f"site {site.name}: no usable files")
            continue
        usable.append((site, files))
    held = set(data_cfg.holdout_sites)
    names = [s.name for s, _ in usable]
    for name in sorted(held - set(names)):
        if name in {s.name for s in sites}:
            raise ConfigError("--holdout-sites", f"site {name} has no usable recordings", "hold out another site")
    chips = cached_site_chips(cache_root, [(s.name, s.lon, s.lat) for s, _ in usable], campaign.imagery,
                              chip_ground_m, data_cfg.stored_size, job=job)
    missing = set(chips.missing)
    for name in sorted(held & missing):
        raise ConfigError("--holdout-sites", f"site {name} lies outside the imagery", "hold out another site")
    records, files = [], []
    for site, site_files in usable:
        if site.name in missing:
            report.skip("outside imagery", f"site {site.name} ({site.lon:.5f}, {site.lat:.5f})")
            continue
        records.append(PairRecord(key=site.name, lon=site.lon, lat=site.lat, image=None, audio=site_files[0].path,
                                  title=f"{site.name}: {len(site_files)} files, "
                                        f"{sum(f.duration_s for f in site_files) / 3600:.2f} h"))
        files.append(site_files)
    if len(records) < 2:
        raise DatasetError(campaign.root, f"{len(records)} usable sites ({report.describe()})",
                           "a campaign needs at least 2 sites with recordings inside the imagery")
    splits, rule = split_sites([r.key for r in records], [r.lon for r in records], [r.lat for r in records],
                               data_cfg.block_km, split_seed, data_cfg.holdout_sites)
    for reason, examples in report.examples.items():
        for message in examples:
            log.warning("skipped (%s): %s", reason, message)
    return CampaignSource(root=campaign.root, records=records, splits=splits, split_rule=rule, report=report,
                          data_cfg=data_cfg, front_end=front_end, table=campaign.root / "campaign.json",
                          files=files, chips=chips, chip_ground_m=float(chip_ground_m))
