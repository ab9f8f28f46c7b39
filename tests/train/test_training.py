"""Training: the loss falls, checkpoints resume exactly, the CLI fails clearly."""

import json

import numpy as np

from tests.conftest import run_python, tiny_config
from train import network
from train.config import TrainConfig
from train.data import epoch_windows
from train.loop import train


def test_windows_are_shifted_and_repeatable():
    ids = np.arange(1000, dtype=np.int32)
    cfg = TrainConfig(batch_size=4, seq_len=10, burn_in=5, seed=3)
    x, y, w = epoch_windows(ids, cfg, epoch=2)
    assert x.shape == y.shape == w.shape == (4 * 25, 15)
    assert np.array_equal(y[:, :-1], x[:, 1:])
    assert w[:, :5].sum() == 0 and w[:, 5:].min() == 1
    assert np.array_equal(x, epoch_windows(ids, cfg, epoch=2)[0])
    assert not np.array_equal(x, epoch_windows(ids, cfg, epoch=3)[0])


def test_training_lowers_validation_loss_and_writes_the_run(tiny_run):
    report = json.loads((tiny_run / "report.json").read_text())
    history = [h["val_nats"] for h in report["history"]]
    assert len(history) == 2
    vocab = json.loads((tiny_run / "vocab.json").read_text())
    assert history[-1] < np.log(len(vocab)) - 0.5  # well below a uniform guess
    assert history[-1] < history[0]
    for name in ("config.json", "corpus.json", "history.csv", "best.weights.h5", "checkpoint/progress.json"):
        assert (tiny_run / name).exists(), name
    assert list((tiny_run / "logs").iterdir()), "TensorBoard logs"
    corpus = json.loads((tiny_run / "corpus.json").read_text())["files"]
    assert {f["encoding"] for f in corpus} == {"utf-8", "utf-8-sig", "gb18030"}


def test_resume_continues_exactly(tiny_corpus, tmp_path):
    cfg = dict(epochs=3, dropout=0.1, units=16, layers=1, batch_size=8, seq_len=24)
    train(tmp_path / "straight", [str(tiny_corpus)], tiny_config(**cfg), report=lambda s: None)
    # Interrupted after its first epoch (a budget no epoch fits in), then resumed.
    first = train(tmp_path / "cut", [str(tiny_corpus)], tiny_config(**cfg, time_budget=1e-9), report=lambda s: None)
    assert first["epochs_run"] == 1
    resumed = train(tmp_path / "cut", None, None, resume=True, time_budget=0, report=lambda s: None)
    straight = json.loads((tmp_path / "straight" / "report.json").read_text())
    assert resumed["epochs_run"] == 3
    np.testing.assert_allclose([h["val_nats"] for h in resumed["history"]],
                               [h["val_nats"] for h in straight["history"]], rtol=1e-5)


def test_lstm_builds_and_steps():
    cfg = TrainConfig(cell="lstm", units=8, layers=2, embedding_dim=4)
    model, stepper = network.build(cfg, vocab_size=10)
    states = [np.zeros((2, 8), np.float32)] * 4
    out = stepper.predict_on_batch([np.ones((2, 5), np.int32), *states])
    assert out[0].shape == (2, 5, 10) and len(out) == 5
    assert network.top_state_index(cfg) == 2


def test_cli_errors_are_one_line(tmp_path):
    missing = run_python("-m", "train", "--corpus", str(tmp_path / "nope"), "--out", str(tmp_path / "r"))
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].startswith("error:") and "Traceback" not in missing.stderr
    bad = run_python("-m", "train", "--corpus", str(tmp_path), "--out", str(tmp_path / "r"), "--cell", "rnn")
    assert bad.returncode == 2 and "--cell must be gru or lstm" in bad.stderr
    resume = run_python("-m", "train", "--out", str(tmp_path / "none"), "--resume")
    assert resume.returncode == 2 and "nothing to resume" in resume.stderr
