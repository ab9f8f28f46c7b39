"""Curves: every run draws curves.png; a machine without matplotlib trains anyway and draws it later."""

from tests.conftest import run_python, tiny_config
from train import curves
from train.loop import train

PNG = b"\x89PNG\r\n\x1a\n"


def test_a_run_draws_its_curves(tiny_run):
    png = tiny_run / "curves.png"
    assert png.read_bytes()[:8] == PNG and png.stat().st_size > 5_000
    assert set(curves.read_history(tiny_run / "history.csv")) >= {"epoch", "train_nats", "val_nats"}


def test_without_matplotlib_training_goes_on_and_curves_come_later(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(curves, "can_draw", lambda: False)  # as on the GPU machine
    said = []
    run = tmp_path / "run"
    train(run, [str(tiny_corpus)], tiny_config(epochs=1, units=16, layers=1), report=said.append)
    assert (run / "history.csv").exists() and not (run / "curves.png").exists()
    assert any("matplotlib is not installed" in line and "python -m train.curves" in line for line in said)
    drawn = run_python("-m", "train.curves", str(run))
    assert drawn.returncode == 0 and (run / "curves.png").read_bytes()[:8] == PNG
    missing = run_python("-m", "train.curves", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "no history.csv" in missing.stderr and "Traceback" not in missing.stderr
