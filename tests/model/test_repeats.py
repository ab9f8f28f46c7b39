"""The repetition policy: the ban on stutter loops and the phrase penalty, on hand-made histories, and
every runtime applying them alike."""

import numpy as np
import pytest

from model.int8 import Int8Step
from model.repeats import (
    PHRASE_GROWTH,
    PHRASE_PENALTY,
    WIDTH,
    ban_mask,
    char_classes,
    loop_bans,
    loop_table,
    matched,
    penalty_mask,
    pushed,
)
from model.runtime import StepRuntime
from model.sampling import never_mask
from model.weights import RecurrentLayer, Weights
from train.repetition import distinct, figures, loops

CHARS = ["[UNK]", *"阿碧朱你我哈、…，。“”", "a", "\n"]
IDS = {c: i for i, c in enumerate(CHARS)}
CLASSES = char_classes(CHARS)


def history(text: str, width: int = WIDTH) -> np.ndarray:
    """recent [1, width] after reading `text`, as the runtimes keep it."""
    recent = np.zeros((1, width), np.int64)
    for c in text:
        recent = pushed(recent, [IDS[c]])
    return recent


def banned(text: str, width: int = WIDTH) -> set[str]:
    ids, hit = loop_bans(history(text, width), CLASSES, loop_table(width))
    return {CHARS[i] for i in ids[hit]}


@pytest.mark.parametrize("text, ban", [
    ("阿碧、阿碧、阿", {"碧"}), ("你……你……", {"你"}), ("哈哈", {"哈"}), ("我，我", {"我"}),
    ("阿碧朱阿碧朱阿碧", {"朱"}), ("“你……你…", {"你"}),
    ("阿碧、阿朱、阿", set()), ("你……你………", set()), ("阿碧\n阿碧\n阿", set()), ("aa", set()), ("", set()),
])
def test_the_character_that_would_complete_a_third_repeat_is_banned(text, ban):
    assert banned(text) == ban


def test_a_narrow_history_bans_only_the_shapes_that_fit():
    assert banned("阿碧朱阿碧朱阿碧", width=8) == {"朱"}  # 3·3 - 1 = 8 characters
    assert banned("阿碧朱阿碧、朱阿碧", width=8) == set()  # 9 would be needed
    assert banned("阿碧朱阿碧、朱阿碧") == set()  # not the same unit: 阿碧朱 then 阿碧、朱


def test_ban_mask_is_minus_infinity_only_where_banned():
    mask = ban_mask(np.concatenate([history("阿碧、阿碧、阿"), history("阿碧")]), CLASSES, loop_table(), len(CHARS))
    assert np.isneginf(mask[0, IDS["碧"]]) and np.isneginf(mask[0]).sum() == 1
    assert not np.isneginf(mask[1]).any()


def test_the_measure_counts_what_the_issue_calls_loops():
    assert loops("阿朱道：“阿朱，你……你……你……”") == ["你……你……你"]
    assert loops("阿碧、阿碧、阿碧、阿碧") == ["阿碧、阿碧、阿碧、阿碧"]
    assert loops("苏普，苏普，苏普") and loops("哈哈哈") and not loops("你……你………你") and not loops("阿碧、阿碧")
    assert distinct("abcdabcd") == 4 / 5 and distinct("abc") == 1.0
    f = figures(["哈哈哈，好", "没有重复的句子"])
    assert (f["with_loop"], f["texts"], f["examples"]) == (0.5, 2, ["哈哈哈"])


def fake_logits_model(order: str, units: int = 2 * WIDTH, spread: float = 8.0):
    """Weights whose logits are the dense bias alone (kernel 0): `order`'s characters likeliest first
    (from `spread` down to 0), whatever was read, so every runtime sees the same logits and greedy
    sampling shows the policy."""
    rng = np.random.default_rng(0)
    r = lambda *shape: rng.normal(0, 0.3, shape).astype(np.float32)  # noqa: E731
    bias = np.full(len(CHARS), -20.0, np.float32)
    bias[[IDS[c] for c in order]] = np.linspace(spread, 0.0, len(order))
    return Weights(embedding=r(len(CHARS), 4), dense_kernel=np.zeros((units, len(CHARS)), np.float32),
                   dense_bias=bias, book_states=np.zeros((1, 1, units), np.float32),
                   rnn=[RecurrentLayer(r(4, 3 * units), r(units, 3 * units), r(2, 3 * units))])


def test_every_runtime_writes_the_same_text_with_no_loop_and_loops_without_the_ban():
    import tensorflow as tf

    from model.onestep import OneStep

    weights = fake_logits_model("碧你…阿、")
    module = OneStep(weights, CHARS, "gru", {}, dtype=tf.float32)
    zero = np.zeros((2, 2, 2 * WIDTH), np.float32)  # the GRU's state and the recent characters, 2 rows

    def onestep(ban, top_k):
        out = module.generate(tf.constant(["你", "阿碧、阿碧、阿"]), tf.constant(zero), tf.constant(60),
                              tf.constant([1e-3, 1e-3]), tf.constant([top_k] * 2), tf.constant([1.0, 1.0]),
                              tf.constant(1, tf.int64), tf.constant(0, tf.int64), tf.constant([ban] * 2))
        return [t.decode() for t in out["text"].numpy()]

    texts = {("tensorflow", k): onestep(True, k) for k in (0, len(CHARS))}  # in the graph's loop, and filtered
    for kernel in ("float32", "gemv", "gemm"):
        rt = StepRuntime(Int8Step(weights, "gru", never_mask(CHARS), kernels=(kernel,), chars=CHARS), CHARS)
        for k in (0, len(CHARS)):  # the draw in the ONNX graph, and model.runtime's NumPy loop
            texts[(kernel, k)], _ = rt.generate(["你", "阿碧、阿碧、阿"], zero, 60, np.full(2, 1e-3, np.float32),
                                                np.full(2, k), np.ones(2, np.float32), 1, 0)
    assert len({tuple(t) for t in texts.values()}) == 1, texts
    written = texts[("tensorflow", 0)]
    assert not any(loops(p + t) for p, t in zip(["你", "阿碧、阿碧、阿"], written)), written
    assert written[1][0] != "碧"  # the prompt's own two repeats: the third is not written
    unbanned = onestep(False, 0)
    assert unbanned == ["碧" * 60] * 2


def test_the_ban_holds_across_calls_through_the_states():
    weights = fake_logits_model("你…阿碧、")
    rt = StepRuntime(Int8Step(weights, "gru", never_mask(CHARS), chars=CHARS), CHARS)
    zero = np.zeros((2, 1, 2 * WIDTH), np.float32)
    temps, ks, ps = np.full(1, 1e-3, np.float32), np.zeros(1), np.ones(1, np.float32)
    whole, _ = rt.generate(["你"], zero, 40, temps, ks, ps, 1, 0)
    pieces, states = [], zero
    for start in range(0, 40, 3):  # calls of 3 characters: every loop would straddle one
        piece, states = rt.generate(["" if start else "你"], states, min(3, 40 - start), temps, ks, ps, 1, start)
        pieces.append(piece[0])
    assert "".join(pieces) == whole[0] and not loops("你" + whole[0])


def taken(text: str, logits: np.ndarray | None = None) -> dict[str, float]:
    """What the phrase penalty takes off each character's logit after `text` (flat logits: no certainty)."""
    logits = np.zeros((1, len(CHARS)), np.float32) if logits is None else logits
    recent = matches = np.zeros((1, WIDTH), np.int64)
    for c in text:  # as the runtimes keep them
        recent = pushed(recent, [IDS[c]])
        matches = matched(matches, recent, [IDS[c]])
    off = penalty_mask(recent, matches, logits)[0]
    return {CHARS[i]: float(v) for i, v in enumerate(off) if v}


def test_the_phrase_penalty_grows_with_the_match_and_sums_over_places():
    assert taken("我你阿") == {} and taken("阿碧朱，阿碧") == {}  # nothing, or two characters matched: no penalty
    assert taken("阿碧朱我，阿碧朱") == pytest.approx({"我": PHRASE_PENALTY})  # 阿碧朱 matched: 我 followed it
    assert taken("你阿碧朱我，你阿碧朱") == pytest.approx({"我": PHRASE_PENALTY * PHRASE_GROWTH})  # four matched
    assert taken("阿碧朱我阿碧朱你，阿碧朱") == pytest.approx({"我": PHRASE_PENALTY, "你": PHRASE_PENALTY})
    # Twice after it, the second time after 7 matched (阿碧朱我阿碧朱): summed.
    assert taken("阿碧朱我阿碧朱我阿碧朱") == pytest.approx({"我": PHRASE_PENALTY * (1 + PHRASE_GROWTH ** 4)})


def test_what_the_model_is_sure_of_is_not_penalised():
    sure = np.zeros((1, len(CHARS)), np.float32)
    sure[0, IDS["我"]] = 5.0  # p(我) ≈ 0.93 at temperature 1: the rest of a name, say
    assert taken("阿碧朱我，阿碧朱", sure) == {}
    sure[0, IDS["我"]] = 2.0  # p ≈ 0.33: a choice, penalised
    assert taken("阿碧朱我，阿碧朱", sure) == pytest.approx({"我": PHRASE_PENALTY})


def test_every_runtime_holds_a_story_off_its_phrases_alike():
    import tensorflow as tf

    from model.onestep import OneStep

    units = 128  # the history: 64 characters
    weights = fake_logits_model("阿碧朱你我哈、，", units, spread=1.0)  # no character sure: the penalty decides
    module = OneStep(weights, CHARS, "gru", {}, dtype=tf.float32)
    zero = np.zeros((2, 2, units), np.float32)  # the GRU's state and the recent characters, 2 rows
    prompts = ["阿碧朱你", "哈"]

    def onestep(ban):
        out = module.generate(tf.constant(prompts), tf.constant(zero), tf.constant(80), tf.constant([1e-3, 1e-3]),
                              tf.constant([0, 0]), tf.constant([1.0, 1.0]), tf.constant(1, tf.int64),
                              tf.constant(0, tf.int64), tf.constant([ban] * 2))
        return [t.decode() for t in out["text"].numpy()]

    texts = {"tensorflow": onestep(True)}
    for kernel in ("float32", "gemv", "gemm"):
        rt = StepRuntime(Int8Step(weights, "gru", never_mask(CHARS), kernels=(kernel,), chars=CHARS), CHARS)
        for k in (0, len(CHARS)):  # the ONNX graph's policy, and model.runtime's NumPy loop
            texts[(kernel, k)], _ = rt.generate(prompts, zero, 80, np.full(2, 1e-3, np.float32), np.full(2, k),
                                                np.ones(2, np.float32), 1, 0)
    assert len({tuple(t) for t in texts.values()}) == 1, texts
    held = [distinct(t) for t in texts["tensorflow"]]
    assert min(held) > 0.85, texts["tensorflow"]  # greedy over 8 characters, yet few 4-grams twice
    assert onestep(False) == ["阿" * 80] * 2  # without the policy: the likeliest, again and again
