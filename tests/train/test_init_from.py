"""Fine-tuning: --init-from a run or a SavedModel, new characters, the parent in the card, exact resume."""

import json

import numpy as np
import pytest

from tests.conftest import make_story, resumed_against_straight, run_python, tiny_config
from train import network
from train.config import TrainConfig
from train.data import log_softmax
from train.export import export_run, pack, run_weights, unpack
from train.loop import train
from train.parent import FINE_TUNE, ParentError, child_vocabulary, child_weights, fine_tune_config, load_parent
from train.vocab import Vocabulary, book_token

NEW_CAST = ["张无忌", "赵敏", "周芷若", "谢逊"]  # characters the tiny parent never saw


@pytest.fixture(scope="module")
def new_corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("new_corpus")
    (d / "倚天.txt").write_text(make_story(40, paragraphs=60, names=NEW_CAST), encoding="utf-8")
    return d


def quiet(_):
    pass


def logprobs(cfg, chars, weights, text):
    """log-probabilities [T, V] of a model with these role weights after reading `text`'s ids."""
    model, stepper = network.build(cfg, len(chars))
    network.set_role_weights(cfg, model, weights)
    ids = Vocabulary(chars).encode(text)[None, :]
    states = [np.zeros((1, cfg.units), np.float32)] * cfg.layers
    return log_softmax(stepper.predict_on_batch([ids, *states])[0][0])


def test_a_child_starts_as_its_parent_on_known_characters(tiny_run, new_corpus):
    parent = load_parent(tiny_run)
    own = Vocabulary.build([(new_corpus / "倚天.txt").read_text()])
    chars = child_vocabulary(parent, own).chars
    assert chars[:len(parent.chars)] == parent.chars  # the parent's ids unchanged
    new = chars[len(parent.chars):]
    assert set("张无忌赵敏周芷若谢逊") - set(parent.chars) <= set(new) and new  # new rows, not [UNK]
    cfg = TrainConfig.load(tiny_run / "config.json")
    text = "乔峰道：“阿朱，拔剑。”"
    before = logprobs(cfg, parent.chars, parent.weights, text)
    after = logprobs(cfg, chars, child_weights(parent, chars), text)
    np.testing.assert_allclose(after[:, :len(parent.chars)][:, 1:], before[:, 1:], atol=1e-5)
    pruned = child_vocabulary(parent, own, keep_parent=False).chars  # only what the new corpus has
    assert set(pruned) == set(own.chars) and "乔" not in pruned and pruned.index("道") < pruned.index("赵")
    # [UNK]'s probability is shared by [UNK] and the new characters: the total is the parent's.
    shared = np.logaddexp.reduce(np.concatenate([after[:, :1], after[:, len(parent.chars):]], axis=1), axis=1)
    np.testing.assert_allclose(shared, before[:, 0], atol=1e-5)


def test_fine_tune_from_a_run_and_from_a_saved_model(tiny_run, new_corpus, tmp_path):
    for source in (tiny_run, tiny_run / "saved_model"):
        out = tmp_path / source.name
        cfg = fine_tune_config({"init_from": str(source), "epochs": 2, "batch_size": 16, "seq_len": 32,
                                "val_chunk": 64, "learning_rate": 1e-2, "warmup_steps": 5, "dropout": 0.0},
                               load_parent(source))
        assert (cfg.units, cfg.layers, cfg.embedding_dim) == (24, 2, 12)  # the parent's
        result = train(out, [str(new_corpus)], cfg, report=quiet)
        assert result["best_val_nats_per_char"] < result["val_nats_at_start"] - 0.1
        record = json.loads((out / "parent.json").read_text())
        assert record["path"] == str(source) and record["new_chars"] >= 8
        card = json.loads((export_run(out, report=quiet) / "model.json").read_text())
        assert card["parent"]["vocab_size"] == record["vocab_size"]
        assert "赵" in json.loads((out / "vocab.json").read_text())


def test_fine_tuning_defaults_and_architecture():
    class P:
        architecture = {"cell": "gru", "layers": 3, "units": 40, "embedding_dim": 8}
        world = "token"

    cfg = fine_tune_config({"init_from": "x", "epochs": 9}, P)
    assert (cfg.layers, cfg.units, cfg.epochs, cfg.learning_rate) == (3, 40, 9, FINE_TUNE["learning_rate"])
    assert cfg.world == "token" and fine_tune_config({"init_from": "x", "world": "none"}, P).world == "none"
    with pytest.raises(ParentError, match="units 64 differs"):
        fine_tune_config({"init_from": "x", "units": 64}, P)


def test_a_resumed_fine_tune_continues_exactly(tiny_run, new_corpus, tmp_path):
    straight, resumed = resumed_against_straight(new_corpus, tmp_path, init_from=str(tiny_run), epochs=3,
                                                 dropout=0.1)
    assert resumed["val_nats_at_start"] == straight["val_nats_at_start"]


def test_cli_refuses_a_missing_parent_or_another_architecture(tiny_run, new_corpus, tmp_path):
    missing = run_python("-m", "train", "--init-from", str(tmp_path / "nope"), "--corpus", str(new_corpus),
                         "--out", str(tmp_path / "a"))
    assert missing.returncode == 2 and "neither a run directory" in missing.stderr
    assert "Traceback" not in missing.stderr
    other = run_python("-m", "train", "--init-from", str(tiny_run), "--units", "32", "--corpus", str(new_corpus),
                       "--out", str(tmp_path / "b"))
    assert other.returncode == 2 and "architecture" in other.stderr and "Traceback" not in other.stderr


def test_eight_bit_weights_round_trip(tiny_run, tmp_path):
    cfg = TrainConfig.load(tiny_run / "config.json")
    weights = run_weights(tiny_run, cfg, len(Vocabulary.load(tiny_run / "vocab.json")))
    pack(weights, tmp_path / "w8.npz", bits=8)
    pack(weights, tmp_path / "w16.npz")
    back = unpack(tmp_path / "w8.npz")
    for name in ("embedding", "dense_kernel"):
        err = np.abs(getattr(back, name) - getattr(weights, name))
        channel = np.abs(getattr(weights, name)).max(axis=1 if name == "embedding" else 0, keepdims=True)
        assert (err <= channel / 127 / 2 + 1e-7).all(), name  # half a step of its channel's scale
    k = back.rnn[1].recurrent
    assert k.shape == weights.rnn[1].recurrent.shape and k.dtype == np.float32
    stored = lambda path: sum(a.nbytes for a in np.load(path).values())  # noqa: E731
    assert np.load(tmp_path / "w8.npz")["rnn_0_kernel"].dtype == np.int8
    assert stored(tmp_path / "w8.npz") < 0.65 * stored(tmp_path / "w16.npz")  # scales cost more in a tiny model


def test_novel_tokens_start_from_the_same_novel_or_from_no_novel(world_corpus, tmp_path):
    parent_run = tmp_path / "parent"
    train(parent_run, [str(world_corpus)], tiny_config(world="token", epochs=1), report=quiet)
    parent = load_parent(parent_run)
    assert parent.world == "token" and parent.books == ["天龙", "射雕"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "射雕.txt").write_text((world_corpus / "射雕.txt").read_text())
    (mine / "倚天.txt").write_text(make_story(41, paragraphs=20, names=NEW_CAST))
    cfg = fine_tune_config({"init_from": str(parent_run), "epochs": 1, "batch_size": 16, "seq_len": 32,
                            "val_chunk": 64}, parent)
    assert cfg.world == "token"  # inherited
    own = Vocabulary.build([(mine / f).read_text() for f in ("射雕.txt", "倚天.txt")])
    chars = child_vocabulary(parent, own).with_book_tokens(2).chars  # novels 1 射雕, 2 倚天 (corpus order)
    child = child_weights(parent, chars, ["射雕", "倚天"])
    row = {c: i for i, c in enumerate(parent.chars)}
    emb = parent.weights.embedding
    token = lambda k: chars.index(book_token(k))  # noqa: E731
    np.testing.assert_array_equal(child.embedding[token(1)], emb[row[book_token(2)]])  # 射雕: the parent's 射雕
    np.testing.assert_array_equal(child.embedding[token(2)], emb[row[book_token(0)]])  # 倚天: "no novel"
    np.testing.assert_array_equal(child.embedding[token(0)], emb[row[book_token(0)]])


def test_fine_tune_from_a_saved_model_that_gets_its_novel_at_every_character(tiny_input_world_run, new_corpus,
                                                                                tmp_path):
    """The shipped model's kind (world "input"): the child keeps the world, its novels' vectors start fresh."""
    from model import load

    source = tiny_input_world_run / "saved_model"
    cfg = fine_tune_config({"init_from": str(source), "epochs": 1, "batch_size": 16, "seq_len": 32, "val_chunk": 64,
                            "dropout": 0.0}, load_parent(source))
    assert cfg.world == "input"
    result = train(tmp_path / "child", [str(new_corpus)], cfg, report=quiet)
    assert result["best_val_nats_per_char"] < result["val_nats_at_start"]
    child = load(export_run(tmp_path / "child", report=quiet))
    assert child.world == "input" and child.books.names == ["倚天"] and child.num_states == cfg.layers + 2
    texts, states = child.generate(["张无忌"], length=10, seed=1)
    assert len(texts[0]) == 10 and states.shape == (cfg.layers + 2, 1, cfg.units)
