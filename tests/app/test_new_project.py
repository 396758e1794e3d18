"""File > New project from recordings…, driven through the dialog's widgets on a tiny generated campaign:
the scan (a sites table asked for only when files have no position), the summary and the sites map, the
pipeline with stand-in train/export steps and the real torch-free atlas build, the new atlas opened, Cancel,
the missing engine, and the Listen tab's hour-of-day filter checked against the campaign table."""

from __future__ import annotations

import csv
import json
import shutil
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.services import new_project as service

FAKE_TRAIN = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    out = Path(sys.argv[sys.argv.index('--out') + 1])
    slow = '--slow' in sys.argv
    out.mkdir(parents=True, exist_ok=True)
    (out / 'argv.json').write_text(json.dumps(sys.argv))
    log = open(out / 'metrics.jsonl', 'a', buffering=1)
    total = 2000 if slow else 20
    log.write(json.dumps({"event": "start", "epochs": 1, "total_steps": total}) + "\\n")
    for step in range(1, total + 1):
        log.write(json.dumps({"event": "step", "step": step, "loss": 1.0 / step}) + "\\n")
        time.sleep(0.05 if slow else 0.001)
    log.write(json.dumps({"event": "end", "status": "finished"}) + "\\n")
""")


@pytest.fixture(scope="module")
def campaign_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine.campaign.demo import generate_campaign

    out = tmp_path_factory.mktemp("new-project") / "demo"
    generate_campaign(out, sites=4, files_per_site=3, file_seconds=5.0, seed=7, world="tiny", workers=1)
    return out


def fake_commands(script: Path, bundle_path: Path, slow: bool = False):
    """Stand-in train and export (a script writing metrics.jsonl; a copy of the test bundle), then the real
    atlas build command (torch-free, quick on the tiny campaign)."""

    def build(spec: service.PipelineSpec):
        real = service.pipeline_commands(spec)
        train_args = real[0][1][3:]  # the engine's own train options, kept so the test can read them
        train = [sys.executable, str(script), *train_args, *(["--slow"] if slow else [])]
        export = [sys.executable, "-c", f"import shutil; shutil.copytree({str(bundle_path)!r}, {str(spec.bundle_dir)!r})"]
        return [("training", train, real[0][2]), ("exporting", export, real[1][2]), real[2]]

    return build


def _truth_sites(demo: Path) -> set[str]:
    return {row["site"] for row in csv.DictReader(open(demo / "truth.csv", encoding="utf-8"))}


def _scan_through_the_dialog(h, dialog, demo: Path) -> None:
    dialog.recordings.setText(str(demo / "recordings"))
    dialog.imagery.addItem(str(demo / "imagery" / "ortho.tif"))
    h.qtbot.mouseClick(dialog.scan_button, Qt.MouseButton.LeftButton)
    state = h.controller.new_project.state
    h.qtbot.waitUntil(lambda: state.phase == "scanned", timeout=60_000)
    # Some Song Meter files carry no GUANO position: the dialog asks for the sites table.
    assert state.needs_sites_table and dialog.sites_row.isVisible()
    assert "no position" in dialog.summary.toPlainText()
    dialog.sites_table.setText(str(demo / "sites.csv"))
    h.qtbot.mouseClick(dialog.scan_button, Qt.MouseButton.LeftButton)
    h.qtbot.waitUntil(lambda: state.phase == "scanned" and not state.needs_sites_table, timeout=60_000)


def test_new_project_from_recordings_opens_the_new_atlas(make_app, campaign_demo: Path, bundle_path: Path,
                                                         tmp_path: Path) -> None:
    h = make_app()
    h.window.new_project_action.trigger()
    dialog = h.window.new_project_dialog
    try:
        _scan_through_the_dialog(h, dialog, campaign_demo)
        state = h.controller.new_project.state
        truth_sites = _truth_sites(campaign_demo)
        assert state.scan.summary["sites"] == len(truth_sites) == 4
        assert {s.name for s in state.scan.sites} == truth_sites
        assert f"at {len(truth_sites)} site(s)" in dialog.summary.toPlainText()
        assert len(dialog.map.sites.data) == 4 and len(dialog.map.outlines) == 1
        # every site of the generated campaign lies on the orthophoto: green, inside the outline
        ring = state.scan.footprints[0]
        lons, lats = [p[0] for p in ring], [p[1] for p in ring]
        for s in state.scan.sites:
            assert s.in_imagery is True and min(lons) <= s.lon <= max(lons) and min(lats) <= s.lat <= max(lats)

        script = tmp_path / "fake_train.py"
        script.write_text(FAKE_TRAIN)
        h.controller.new_project.commands = fake_commands(script, bundle_path)
        assert dialog.run_button.isEnabled()
        h.qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)
        h.qtbot.waitUntil(lambda: state.phase in ("finished", "failed", "cancelled"), timeout=180_000)
        assert state.phase == "finished", state.message
        atlas_dir = state.project_dir / "atlas"
        assert h.state.project.atlas_path == atlas_dir.resolve() or h.state.project.atlas_path == atlas_dir
        assert len(h.state.project.atlas.recordings) == state.scan.usable == 12
        argv = json.loads((state.project_dir / "run" / "argv.json").read_text())
        assert argv[argv.index("--data") + 1] == str(state.project_dir / "campaign")
        assert argv[argv.index("--preset") + 1] == "field-finetune"
        if service.default_init_run(bundle_path) is None:  # the demo model's run is not on this machine
            assert "--init" not in argv and "from scratch" in dialog.engine_note.text()
            # chips as wide as the demo model's view (its bundle says how wide)
            ground = json.loads((bundle_path / "manifest.json").read_text())["image"].get("ground_size_m") or 200.0
            assert float(argv[argv.index("--ground-size-m") + 1]) == pytest.approx(ground)
        assert dialog.progress.value() == dialog.progress.maximum()

        # The Listen tab: each recording's site and local time, and the hour filter against the table.
        table = {row["path"]: row for row in csv.DictReader(open(state.project_dir / "campaign" / "recordings.csv"))}
        atlas = h.state.project.atlas
        h.controller.project.select_tile(0)
        listen = h.window.listen
        assert listen.best.rowCount() == 10
        for row in range(listen.best.rowCount()):
            match = listen.best.matches[row]
            record = table[match.id]
            assert listen.best.item(row, 3).text() == \
                f"{record['site']} · {record['start_local'][:16].replace('T', ' ')}"
        listen.hour_from.setValue(4)
        listen.hour_to.setValue(8)
        listen.hour_filter.setChecked(True)
        expected = {p for p, r in table.items() if 4 <= datetime.fromisoformat(r["start_local"]).hour < 8}
        assert 0 < len(expected) < 10
        assert {m.id for m in listen.best.matches} == expected
        assert {m.id for m in listen.nearest.matches} == expected
        listen.hour_from.setValue(21)
        listen.hour_to.setValue(4)
        wrapped = {p for p, r in table.items() if not 4 <= datetime.fromisoformat(r["start_local"]).hour < 21}
        assert {m.id for m in listen.best.matches} == wrapped
        listen.hour_filter.setChecked(False)
        assert listen.best.rowCount() == min(10, len(atlas.recordings))
    finally:
        dialog.hide()
        h.controller.new_project.cancel()
        h.wait_idle()


def test_cancel_stops_the_running_step_and_reports_cancelled(make_app, campaign_demo: Path, bundle_path: Path,
                                                            tmp_path: Path) -> None:
    h = make_app()
    dialog = h.window.open_new_project()
    actions = h.controller.new_project
    try:
        actions.scan(campaign_demo / "recordings", [campaign_demo / "imagery" / "ortho.tif"],
                     campaign_demo / "sites.csv")
        h.qtbot.waitUntil(lambda: actions.state.phase == "scanned", timeout=60_000)
        # A bundle whose training run is on this machine: the pipeline fine-tunes from it.
        run = tmp_path / "demo-run"
        run.mkdir()
        init_bundle = tmp_path / "init-bundle"
        shutil.copytree(bundle_path, init_bundle)
        manifest = json.loads((init_bundle / "manifest.json").read_text())
        manifest.setdefault("trained_on", {})["run"] = str(run)
        (init_bundle / "manifest.json").write_text(json.dumps(manifest))
        actions.init_bundle = init_bundle
        script = tmp_path / "fake_train.py"
        script.write_text(FAKE_TRAIN)
        actions.commands = fake_commands(script, bundle_path, slow=True)
        h.qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)
        h.qtbot.waitUntil(lambda: actions.state.phase == "training" and actions.state.progress[0] > 0, timeout=60_000)
        argv = json.loads((actions.state.project_dir / "run" / "argv.json").read_text())
        assert argv[argv.index("--init") + 1] == str(run) and "--ground-size-m" not in argv
        assert f"Fine-tuning from {run}" in dialog.engine_note.text()
        assert dialog.cancel_button.isEnabled()
        h.qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
        h.qtbot.waitUntil(lambda: actions.state.phase in ("cancelled", "failed", "finished"), timeout=30_000)
        assert actions.state.phase == "cancelled" and "Cancelled" in dialog.status.text()
        lines = (actions.state.project_dir / "run" / "metrics.jsonl").read_text().splitlines()
        assert '"end"' not in lines[-1] and len(lines) < 2000  # stopped mid-run, not finished
        assert not (actions.state.project_dir / "atlas").exists() and h.state.project.atlas is None \
            or h.state.project.atlas_path != actions.state.project_dir / "atlas"
    finally:
        dialog.hide()
        actions.cancel()
        h.wait_idle()


def test_without_the_engine_the_button_points_to_the_install(make_app, campaign_demo: Path) -> None:
    h = make_app()
    dialog = h.window.open_new_project()
    actions = h.controller.new_project
    try:
        actions.scan(campaign_demo / "recordings", [], campaign_demo / "sites.csv")
        h.qtbot.waitUntil(lambda: actions.state.phase == "scanned", timeout=60_000)
        h.controller.engine.find_spec = lambda name: None  # torch and friends are not installed
        h.qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)
        assert actions.task is None or not actions.task.running or actions.state.phase == "scanned"
        assert actions.state.phase == "scanned"
        assert "Install the engine" in dialog.status.text() and dialog.install_button.isVisible()
        h.qtbot.mouseClick(dialog.install_button, Qt.MouseButton.LeftButton)
        assert h.window.tabs.currentWidget() is h.window.train
        # with the engine back, a campaign scanned without imagery is refused before anything runs
        import importlib.util

        h.controller.engine.find_spec = importlib.util.find_spec
        h.qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)
        assert actions.state.phase == "scanned" and "no imagery" in dialog.status.text()
    finally:
        dialog.hide()
        h.wait_idle()


def test_a_bad_recordings_folder_is_one_line(make_app, tmp_path: Path) -> None:
    h = make_app()
    actions = h.controller.new_project
    actions.scan(tmp_path / "nowhere", [])
    h.qtbot.waitUntil(lambda: actions.state.phase == "failed", timeout=30_000)
    assert "recordings folder not found" in actions.state.message and "\n" not in actions.state.message
    h.wait_idle()


def test_commands_follow_the_engines_cli_and_a_second_attempt_keeps_the_first(tmp_path: Path) -> None:
    spec = service.PipelineSpec(campaign_dir=tmp_path / "campaign", project_dir=tmp_path,
                                imagery=(tmp_path / "ortho.tif",), init_run=tmp_path / "demo-run",
                                holdout_sites=("site-01", "site-02"), python="py")
    (phase1, train, _), (phase2, export, _), (phase3, atlas, _) = service.pipeline_commands(spec)
    assert (phase1, phase2, phase3) == service.PHASES
    assert train == ["py", "-m", "engine.cli", "train", "--data", str(tmp_path / "campaign"), "--preset",
                     "field-finetune", "--out", str(tmp_path / "run"), "--init", str(tmp_path / "demo-run"),
                     "--holdout-sites", "site-01,site-02"]
    assert export == ["py", "-m", "engine.cli", "export", "--run", str(tmp_path / "run"), "--out",
                      str(tmp_path / "bundle")]
    assert atlas == ["py", "-m", "engine.cli", "atlas", "build", "--bundle", str(tmp_path / "bundle"), "--out",
                     str(tmp_path / "atlas"), "--recordings", str(tmp_path / "campaign"), "--imagery",
                     str(tmp_path / "ortho.tif")]
    (tmp_path / "run").mkdir()  # a cancelled first attempt
    again = spec.next_free()
    assert (again.run_dir, again.bundle_dir, again.atlas_dir) == (tmp_path / "run-2", tmp_path / "bundle-2",
                                                                  tmp_path / "atlas-2")
