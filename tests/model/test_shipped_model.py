"""The shipped default model (model/default): loads with no flags, generates, scores."""

import json
import math

import numpy as np
import pytest

from model import DEFAULT_MODEL_DIR
from tests.conftest import SHARED_CORPUS, run_python

pytestmark = pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "saved_model.pb").exists(), reason="no shipped model")


def test_shipped_model_generates_and_scores_in_a_fresh_process():
    script = """
import json, math
from model import load
m = load()
texts, states = m.generate(["乔峰带阿朱🐉Hello"], length=120, temperature=0.8, seed=7)
nll, chars, _ = m.score(["　　萧峰道：“阿朱，咱们走罢。”"])
print(json.dumps({"text": texts[0], "states": list(states.shape), "nll": float(nll[0]), "chars": int(chars[0]),
                  "size": m.vocab_size}))
"""
    r = run_python("-c", script)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert len(out["text"]) == 120 and "[UNK]" not in out["text"]
    # Mostly hanzi and Chinese punctuation: a trained model, not noise over the vocabulary.
    cjk = sum(1 for ch in out["text"] if "\u4e00" <= ch <= "\u9fff" or ch in "，。：“”！？、　\n…；")
    assert cjk / len(out["text"]) > 0.9
    assert out["chars"] == 16 and math.isfinite(out["nll"]) and out["nll"] / out["chars"] < 6.0
    assert out["states"] == [4, 1, 1024] and out["size"] > 4000  # 2 GRU layers, the novel's row, recent characters


def test_shipped_model_card_and_size():
    card = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())
    assert len(card["corpus"]) == 14 and all(len(f["sha256"]) == 64 for f in card["corpus"])
    assert [b["name"] for b in card["books"]] == [f["book"] for f in card["corpus"]]
    assert all(len(b["names"]) >= 5 for b in card["books"])
    figures = card["validation"]  # measured by train.export --evaluate on this artifact, not typed in
    assert set(figures["artifact_files"]) == {f["file"] for f in card["corpus"]}
    assert figures["artifact_nats_per_char"] < 3.7 and figures["artifact_nats_per_char_no_book"] < 3.7
    assert 0 <= figures["world_foreign_share"] <= 0.05
    size = sum(f.stat().st_size for f in DEFAULT_MODEL_DIR.rglob("*") if f.is_file())
    assert size <= 20e6 and card["architecture"]["storage"] == "int8"  # 8-bit matrices: half of float16


def test_shipped_model_picks_the_novel_from_the_names():
    r = run_python("-c", "from model import load; m = load(); "
                         "print(m.pick_book('乔峰带阿朱'), m.pick_book('郭靖对黄蓉说'), m.pick_book('韦小宝笑道'))")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["天龙八部", "射雕英雄传", "鹿鼎记"]


def test_generate_cli_uses_the_shipped_model_by_default():
    r = run_python("-m", "model", "段誉", "--length", "30", "--seed", "1")
    # print() adds one newline; the 30 characters themselves may end in one too.
    assert r.returncode == 0 and r.stdout.startswith("段誉") and len(r.stdout) - 1 == 32
    assert "[天龙八部]" in r.stderr  # auto: 段誉's novel


@pytest.mark.slow
def test_the_cards_world_figures_are_what_the_shipped_model_measures():
    """The card's figures are measurements: the same measure run here gives them again (within
    sampling noise, as another CPU's int8 kernels may round differently and so sample other text)."""
    from model import load
    from train.worlds import format_check, world_consistency

    m = load()
    card = m.card.validation
    worlds = world_consistency(m)
    assert worlds["own"] + worlds["foreign"] > 800
    assert abs(worlds["foreign_share"] - card["world_foreign_share"]) <= 0.025
    assert worlds["foreign_share"] <= 0.06
    marks = format_check(m)
    assert {k: marks[k] for k in ("missing_glyph", "corner_quotes")} == {"missing_glyph": 0, "corner_quotes": 0}
    assert marks["wrapped_runs"] <= 1 and card["format_defects"]["wrapped_runs"] == 0


@pytest.mark.parametrize("prompt, book", [
    ("郭靖对黄蓉说", "射雕英雄传"), ("郭靖 杨过", "神雕侠侣"), ("乔峰带阿朱", "天龙八部"),
    ("一个小女孩突然冷笑", None), ("他走进客栈", None)])
def test_the_shipped_card_picks_a_novel_only_from_its_own_names(prompt, book):
    from model.books import Books

    card = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())
    assert Books(card["books"]).pick(prompt) == book


@pytest.mark.skipif(not (SHARED_CORPUS / "extra" / "gulong").is_dir(), reason="needs ../shared/corpus/extra/gulong")
def test_no_gulong_passage_is_sent_into_a_jin_yong_novel():
    """2,000 characters of any 古龙 novel (its opening, and four places drawn at random) pick no novel."""
    from model.books import Books
    from train.corpus import read_corpus

    books = Books(json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())["books"])
    rng = np.random.default_rng(0)
    novels = read_corpus([SHARED_CORPUS / "extra" / "gulong"], report=lambda s: None)
    starts = {n.name: [0, *rng.integers(0, len(n.text) - 2000, 4)] for n in novels}
    picked = [(n.name, s, books.pick(n.text[s:s + 2000])) for n in novels for s in starts[n.name]]
    assert len(novels) >= 30
    assert [p for p in picked if p[2]] == []


def test_the_shipped_ruler_finds_jin_yongs_form_more_jin_yong_than_modern_chinese():
    from model import load
    from model.flavour import Flavour, rate_texts

    model = load()
    ruler = Flavour.from_card(model.card.flavour)
    assert ruler is not None and min(ruler.lines) >= 50  # every length band measured on real sentences
    wuxia = ["那老者冷笑一声，道：“你是什么人？”", "段誉心想：“这位姑娘好美。”", "张无忌点了点头，转身便走。"]
    modern = ["我的电脑坏了，需要重启一下系统。", "量子计算机的算法复杂度很高。", "今天下午三点开会讨论预算。"]
    nats, chars = rate_texts(model, wuxia + modern)
    scores = [ruler.score(n, c) for n, c in zip(nats, chars)]
    assert min(scores[:3]) > 60 and max(scores[3:]) < 30, scores
