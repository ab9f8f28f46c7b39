"""Training: the loss falls, checkpoints resume exactly, the CLI fails clearly."""

import json

import keras
import numpy as np

from tests.conftest import resumed_against_straight, run_python
from train import network
from train.config import TrainConfig
from train.data import epoch_batches, epoch_windows, steps_per_epoch
from train.export import run_weights
from train.vocab import Vocabulary


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
    # Interrupted after its first epoch (a budget no epoch fits in), then resumed.
    _, resumed = resumed_against_straight(tiny_corpus, tmp_path, epochs=3, dropout=0.1, units=16, layers=1,
                                          batch_size=8, seq_len=24)
    assert resumed["epochs_run"] == 3


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


def test_streams_continue_row_by_row_across_batches():
    ids = np.arange(5000, dtype=np.int32)
    cfg = TrainConfig(batch_size=4, seq_len=10, carry_state=True, seed=3)
    x, y, w = epoch_batches(ids, cfg, epoch=1)
    steps = steps_per_epoch(len(ids), cfg)
    assert x.shape == y.shape == w.shape == (steps * 4, 10) and w.min() == 1
    assert np.array_equal(y[:, :-1], x[:, 1:])
    batches = x.reshape(steps, 4, 10)
    assert np.array_equal(batches[1:, :, 0], batches[:-1, :, -1] + 1), "row i of batch t+1 goes on from row i of t"
    assert len(np.unique(x)) == x.size, "streams do not overlap"
    assert steps_per_epoch(len(ids), cfg) * 4 * 10 > 0.9 * len(ids), "an epoch covers the text"
    assert not np.array_equal(x, epoch_batches(ids, cfg, epoch=2)[0]), "window edges move between epochs"


def test_carried_state_model_goes_on_where_the_last_batch_ended():
    cfg = TrainConfig(units=8, layers=2, embedding_dim=4, batch_size=3, carry_state=True, dropout=0.0)
    model, stepper = network.build(cfg, vocab_size=12)
    rng = np.random.default_rng(0)
    first, second = rng.integers(0, 12, (3, 5)).astype(np.int32), rng.integers(0, 12, (3, 6)).astype(np.int32)
    model(first)
    carried = np.asarray(model(second))
    zeros = [np.zeros((3, 8), np.float32)] * 2
    whole = stepper.predict_on_batch([np.concatenate([first, second], axis=1), *zeros])[0]
    np.testing.assert_allclose(carried, whole[:, 5:], atol=1e-5)
    model.reset_carry()
    np.testing.assert_allclose(np.asarray(model(second)), stepper.predict_on_batch([second, *zeros])[0], atol=1e-5)


def test_carried_state_training_resumes_exactly_and_exports(tiny_corpus, tmp_path):
    straight, _ = resumed_against_straight(tiny_corpus, tmp_path, epochs=2, dropout=0.1, units=16, layers=1,
                                           batch_size=4, seq_len=16, carry_state=True)
    assert straight["history"][-1]["val_nats"] < straight["history"][0]["val_nats"]
    cut = tmp_path / "cut"
    run_cfg, vocab = TrainConfig.load(cut / "config.json"), Vocabulary.load(cut / "vocab.json")
    weights = run_weights(tmp_path / "cut", run_cfg, len(vocab))  # what export and pack read
    assert weights.embedding.shape == (len(vocab), run_cfg.embedding_dim)
    assert weights.rnn[0].recurrent.shape == (16, 3 * 16)


def test_fit_carries_the_state_from_batch_to_batch():
    """With the weights frozen (learning rate 0), the state `fit` leaves behind is the one a reader
    carrying it along every stream would have: so fit passed it from each batch to the next."""
    cfg = TrainConfig(units=8, layers=1, embedding_dim=4, batch_size=3, seq_len=7, carry_state=True, dropout=0.0)
    model, stepper = network.build(cfg, vocab_size=12)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ids = np.random.default_rng(1).integers(0, 12, 200).astype(np.int32)
    x, y, _ = epoch_batches(ids, cfg, epoch=0)
    model.fit(x, y, batch_size=3, epochs=1, shuffle=False, verbose=0)
    streams = np.concatenate(list(x.reshape(-1, 3, 7)), axis=1)  # [3, steps*7]: each row's whole stream
    final = stepper.predict_on_batch([streams, np.zeros((3, 8), np.float32)])[1]
    np.testing.assert_allclose(np.asarray(model.carry[0]), final, atol=1e-5)


def test_world_windows_carry_their_novel_and_balance_draws_short_novels_more():
    from train.data import window_starts

    ids = np.arange(12000, dtype=np.int32)
    books = np.repeat(np.array([1, 2], np.int16), [11000, 1000])  # a long novel and a short one
    cfg = TrainConfig(batch_size=8, seq_len=10, world="state", book_drop=0.25, seed=3)
    (x, book), y, w = epoch_batches(ids, cfg, epoch=1, books=books)
    first_book = books[x[:, 0]]
    assert np.all((book == first_book) | (book == 0))
    assert 0.15 < np.mean(book == 0) < 0.35  # book_drop of the windows read as "no novel"
    plain = window_starts(len(ids), cfg, 1, books)
    assert np.mean(books[plain] == 2) < 0.15  # ∝ length: the short novel gets about 1/12
    balanced = window_starts(len(ids), TrainConfig(batch_size=8, seq_len=10, book_balance=0.0, seed=3), 1, books)
    assert 0.35 < np.mean(books[balanced] == 2) < 0.65  # power 0: every novel alike
    assert np.all(books[balanced] == books[balanced + 10])  # no window straddles two novels
    tok, ty, tw = epoch_batches(ids, TrainConfig(batch_size=8, seq_len=10, world="token", seed=3), epoch=1,
                                books=books, token_base=20000)
    assert tok.shape == (len(x), 11) and np.all(tok[:, 0] >= 20000) and np.array_equal(ty[:, 0], tok[:, 1])
    assert np.array_equal(ty[:, 1:], y) and tw.shape == tok.shape


def test_every_training_flag_explains_itself_from_the_config():
    out = run_python("-m", "train", "--help")
    assert out.returncode == 0
    help_text = " ".join(out.stdout.split())
    for flag, words in (("--world", "how the model knows its novel"), ("--book-balance", "short novels seen more"),
                        ("--dropout", "between layers"), ("--carry-state", "truncated BPTT")):
        assert flag in help_text and words in help_text, flag
