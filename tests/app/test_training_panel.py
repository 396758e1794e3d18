"""The Train panel with the real engine: the tiny preset on the tiny demo world, in a subprocess.
Curves fill from metrics.jsonl, the run is exported, the new bundle is offered and, once accepted,
loaded and the atlas re-embedded with it; a cancel stops the engine cleanly and keeps its checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from engine.atlas import open_atlas
from engine.bundle.format import load_bundle

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # the real engine trains in a subprocess


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine.demo_world import generate_world

    out = tmp_path_factory.mktemp("world") / "tiny-world"
    generate_world(out, seed=0, size="tiny")
    return out


def test_train_export_switch_and_cancel(make_app, atlas_copy: Path, bundle_path: Path, tiny_world: Path,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    h = make_app()
    h.open(atlas_copy, bundle_path)
    old_id = h.state.project.bundle.bundle_id
    panel = h.window.train
    panel.data_edit.setText(str(tiny_world))
    panel.preset_combo.setCurrentText("tiny")
    assert panel.preset_combo.currentText() == "tiny"
    panel.epochs_spin.setValue(2)
    etas: list[str] = []
    h.state.training.changed.connect(lambda: etas.append(panel.eta_label.text()))
    h.qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert panel.start_button.text() == "Cancel"
    h.qtbot.waitUntil(lambda: h.state.training.phase in ("finished", "failed", "cancelled"), timeout=300_000)
    training = h.state.training
    assert training.phase == "finished", training.message
    h.wait_idle()
    # Curves: one loss point per logged step, as the engine wrote them.
    records = [json.loads(line) for line in (training.run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r.get("event") == "step" and r.get("loss") == r.get("loss")]
    assert training.curves.loss_steps == [r["step"] for r in steps] and len(steps) > 0
    assert training.curves.loss == pytest.approx([r["loss"] for r in steps])
    assert len(training.curves.val_steps) == sum(1 for r in records if r.get("event") == "epoch" and r.get("val"))
    assert any(text.startswith("ETA ") for text in etas)
    # The new model is offered; nothing switches until the user accepts it.
    new = load_bundle(training.bundle_path)
    assert new.bundle_id != old_id
    assert h.state.project.bundle.bundle_id == old_id and open_atlas(atlas_copy).bundle_id == old_id
    assert training.offer is not None
    h.qtbot.mouseClick(h.window.extras.offer.use_button, Qt.MouseButton.LeftButton)
    h.qtbot.waitUntil(lambda: h.state.project.bundle.bundle_id == new.bundle_id, timeout=300_000)
    h.wait_idle()
    # The new bundle is loaded and the atlas (on disk too) now belongs to it.
    assert h.state.project.bundle.bundle_id == new.bundle_id
    assert open_atlas(atlas_copy).bundle_id == new.bundle_id
    assert h.window.status.bundle_label.text() == f"model: {training.bundle_path.name}"
    assert panel.start_button.text() == "Start training"

    # A second run, cancelled at its first step: the engine stops cleanly and keeps a checkpoint.
    def cancel_at_first_step(record: dict) -> None:
        if record.get("event") == "step" and panel.start_button.text() == "Cancel":
            h.qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)

    h.state.training.points_added.connect(cancel_at_first_step)
    panel.epochs_spin.setValue(50)
    h.qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    h.qtbot.waitUntil(lambda: h.state.training.phase in ("finished", "failed", "cancelled"), timeout=300_000)
    assert h.state.training.phase == "cancelled", h.state.training.message
    run = h.state.training.run_dir
    assert (run / "checkpoints" / "last.pt").is_file()
    end = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert end["event"] == "end" and end["status"] == "interrupted"
    assert h.state.project.bundle.bundle_id == new.bundle_id  # nothing switched


def test_training_with_a_bad_data_folder_fails_with_the_engines_message(make_app, tmp_path: Path) -> None:
    h = make_app()
    empty = tmp_path / "empty"
    empty.mkdir()
    # A pair table with no rows: the layout check in the app passes it, the engine refuses it.
    (empty / "pairs.csv").write_text("id,longitude,latitude,image,audio\n")
    panel = h.window.train
    panel.data_edit.setText(str(empty))
    panel.preset_combo.setCurrentText("tiny")
    h.qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    h.qtbot.waitUntil(lambda: h.state.training.phase in ("finished", "failed", "cancelled"), timeout=120_000)
    assert h.state.training.phase == "failed"
    assert "training failed (exit status 2)" in h.window.banner.text and str(empty) in h.window.banner.text
    assert panel.phase_label.text().startswith("Failed:")
