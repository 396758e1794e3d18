"""The scan reports progress while it streams, and a cancelled rescan keeps the campaign already written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.campaign import load_campaign
from engine.campaign.demo import generate_campaign
from engine.campaign.scan import REPORT_EVERY, ScanOptions, scan_to_folder, walk_files
from engine.errors import Cancelled
from engine.progress import Job
from tests.engine.campaign.helpers import audiomoth_file


class CancelAfter(Job):
    def __init__(self, reports: int) -> None:
        super().__init__(lambda done, total, message: self.calls.append((done, total, message)))
        self.calls: list = []
        self.reports = reports

    def report(self, done: int, total: int | None = None, message: str = "") -> None:
        super().report(done, total, message)
        if len(self.calls) >= self.reports:
            self.cancel()


def _campaign(tmp_path: Path, files: int) -> tuple[Path, Path]:
    rec = tmp_path / "rec"
    start = datetime(2021, 3, 1, tzinfo=UTC)
    for k in range(files):
        audiomoth_file(rec / f"S{k % 3}" / "SD", start + timedelta(minutes=k), rate=8000, seconds=1.0)
    sites = tmp_path / "sites.csv"
    sites.write_text("site,longitude,latitude\nS0,1,2\nS1,3,4\nS2,5,6\n")
    return rec, sites


def test_walk_streams_every_file_in_name_order(tmp_path: Path) -> None:
    rec, _ = _campaign(tmp_path, 7)
    (rec / ".hidden").mkdir()
    (rec / ".hidden" / "20210301_000000.WAV").write_bytes(b"")
    walked = walk_files(rec)
    assert not isinstance(walked, list)  # a generator: the tree is never listed whole
    paths = [p.relative_to(rec).as_posix() for p in walked]
    assert len(paths) == 7 and paths == sorted(paths)


def test_progress_and_a_cancelled_rescan_keeps_the_old_campaign(tmp_path: Path) -> None:
    rec, sites = _campaign(tmp_path, REPORT_EVERY * 2 + 5)
    job = CancelAfter(10**9)
    scan_to_folder(ScanOptions(rec, sites_table=sites), tmp_path / "c", job)
    assert [c[0] for c in job.calls] == [REPORT_EVERY, 2 * REPORT_EVERY, 2 * REPORT_EVERY + 5]
    before = (tmp_path / "c" / "recordings.csv").read_bytes()
    audiomoth_file(rec / "S0" / "SD", datetime(2021, 4, 1, tzinfo=UTC), rate=8000, seconds=1.0)
    with pytest.raises(Cancelled):
        scan_to_folder(ScanOptions(rec, sites_table=sites), tmp_path / "c", CancelAfter(1))
    assert (tmp_path / "c" / "recordings.csv").read_bytes() == before
    assert len(load_campaign(tmp_path / "c").recordings) == 2 * REPORT_EVERY + 5


def test_a_cancelled_generation_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(Cancelled):
        generate_campaign(tmp_path / "demo", sites=2, files_per_site=2, file_seconds=2.0, world="tiny", workers=1,
                          job=CancelAfter(2))
    assert list(tmp_path.iterdir()) == []
