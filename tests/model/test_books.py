"""Novels: names found in the corpus, picking a novel from a prompt, and a model that starts in its novel."""

import json

import numpy as np
import pytest

from model import load
from model.books import Books
from tests.conftest import WORLD_CASTS, make_story, run_python
from train.names import book_names, principal_names, speakers
from train.worlds import count_names, world_prompts

CARD_BOOKS = [
    {"id": 1, "name": "射雕英雄传", "names": {"郭靖": [4884, 0.78], "黄蓉": [3536, 0.72], "欧阳克": [610, 1.0]}},
    {"id": 2, "name": "神雕侠侣", "names": {"杨过": [5984, 0.99], "郭靖": [1428, 0.22], "黄蓉": [1422, 0.27]}},
    {"id": 3, "name": "天龙八部", "names": {"乔峰": [1120, 1.0], "阿朱": [988, 1.0], "一个": [1550, 0.07]}},
]


@pytest.mark.parametrize("prompt,book", [
    ("乔峰带阿朱", "天龙八部"),
    ("郭靖对黄蓉说", "射雕英雄传"),
    ("郭靖看着杨过", "神雕侠侣"),  # the other names decide
    ("他走进一个客栈", None),  # only a common word: no novel
    ("", None),
])
def test_a_prompt_picks_the_novel_its_names_point_to(prompt, book):
    assert Books(CARD_BOOKS).pick(prompt) == book


def test_only_a_novels_own_name_picks_it_and_a_long_text_needs_two():
    common = [{"id": 1, "name": "白马啸西风", "names": {"李文秀": [900, 1.0], "苏普": [600, 1.0], "突然": [90, 0.14],
                                                   "冷笑": [40, 0.2], "大声": [50, 0.1], "当即": [30, 0.12]}},
              {"id": 2, "name": "天龙八部", "names": {"乔峰": [1120, 1.0], "突然": [900, 0.07]}}]
    books = Books(common)
    assert books.scores("他突然冷笑，大声道，当即走了")["白马啸西风"] >= 0.5  # enough "evidence" by the sum alone ...
    assert books.pick("他突然冷笑，大声道，当即走了") is None  # ... but no name of its own
    assert books.pick("李文秀突然冷笑") == "白马啸西风"
    filler = "　　那人走了很远的路，" * 30  # 330 characters without a name
    assert books.pick(filler + "李文秀道") is None  # one name in a long text may be a chance likeness
    assert books.pick(filler + "李文秀对苏普道") == "白马啸西风"


def test_words_other_authors_use_as_often_are_no_names():
    names = ["段誉", "虚竹", "突然"]  # 突然 "speaks" here as in 突然道：, and every author writes it
    books = {"甲": make_story(1, 80, names=names), "乙": make_story(2, 80, names=["杨过", "黄蓉", "突然"])}
    assert "突然" in book_names(books)["甲"]
    other = make_story(3, 80, names=["小鱼儿", "突然"])  # another author's novel
    table = book_names(books, reference=[other])
    assert "突然" not in table["甲"] and "突然" not in table["乙"]
    assert {"段誉", "虚竹"} <= set(table["甲"]) and {"杨过", "黄蓉"} <= set(table["乙"])


def test_resolve_names_auto_and_none_and_rejects_unknown_novels():
    books = Books(CARD_BOOKS)
    assert books.resolve("auto", "乔峰") == "天龙八部"
    assert books.resolve("神雕侠侣", "乔峰") == "神雕侠侣"
    assert books.resolve(None) is None and books.resolve("none") is None
    with pytest.raises(ValueError, match="天龙八部"):
        books.resolve("红楼梦")


def test_names_come_from_the_corpus_with_their_share_per_novel():
    shared = ["乔峰", "郭靖"]  # speaks in both made-up novels
    books = {"甲": make_story(1, 80, names=["段誉", "虚竹"] + shared),
             "乙": make_story(2, 80, names=["杨过", "黄蓉"] + shared)}
    table = book_names(books)
    assert {"段誉", "虚竹", "乔峰", "郭靖"} <= set(table["甲"])
    assert table["甲"]["段誉"][1] == 1.0 and table["乙"]["杨过"][1] == 1.0
    assert 0.2 < table["甲"]["乔峰"][1] < 0.8  # shared between the two
    principal = principal_names(table)
    assert "段誉" in principal["甲"] and "乔峰" not in principal["甲"]
    assert speakers("　　郭靖笑道：“好。”那人道：“走。”")["郭靖"] == 1
    assert "那人" not in speakers("　　那人道：“走。”")


def test_world_prompts_and_name_counts():
    prompts = world_prompts(CARD_BOOKS)
    assert ("天龙八部", "乔峰对阿朱说") in prompts
    assert all(book != "射雕英雄传" for book, _ in prompts)  # only one name of its own there (share ≥ 0.8)
    principal = {"天龙八部": ["乔峰", "阿朱"], "神雕侠侣": ["杨过"]}
    assert count_names("乔峰见了杨过，阿朱笑了。乔峰", principal) == {"天龙八部": 3, "神雕侠侣": 1}


@pytest.fixture(scope="module")
def world(tiny_world_run):
    return load(tiny_world_run / "saved_model")


def test_the_card_lists_the_novels_and_each_starts_from_its_own_state(world):
    assert world.world == "state"
    assert world.books.names == list(WORLD_CASTS)
    none, a, b = (world.initial_state(2, book) for book in (None, *WORLD_CASTS))
    assert none.shape == (world.num_states, 2, world.units)
    assert not np.allclose(a, b) and not np.allclose(a, none)
    assert world.pick_book("乔峰带阿朱") == "天龙" and world.pick_book("郭靖对黄蓉说") == "射雕"
    card = json.loads((world.path / "model.json").read_text())
    assert card["books"][0]["names"]["乔峰"][1] == 1.0


def test_generate_starts_in_the_prompts_novel_and_continues_exactly(world):
    kw = dict(length=30, temperature=1.0, seed=5)
    auto, _ = world.generate(["乔峰"], **kw)
    named, _ = world.generate(["乔峰"], **kw, book="天龙")
    explicit, _ = world.generate(["乔峰"], world.initial_state(1, "天龙"), **kw)
    assert auto == named == explicit
    # The novel's state changes what the model expects (its sampled text may still agree, by chance).
    nll = [world.score(["乔峰带阿朱"], world.initial_state(1, book))[0][0] for book in ("天龙", "射雕", None)]
    assert len(set(nll)) == 3
    # 200 + 200 == 400 from a novel's state
    whole, _ = world.generate(["郭靖"], length=40, temperature=0.9, seed=3)
    first, states = world.generate(["郭靖"], length=20, temperature=0.9, seed=3)
    second, _ = world.generate([""], states, length=20, temperature=0.9, seed=3, step=20)
    assert first[0] + second[0] == whole[0]
    with pytest.raises(ValueError, match="天龙"):
        world.generate(["x"], book="红楼梦")


def test_a_model_without_a_world_ignores_books(tiny_model_dir):
    m = load(tiny_model_dir)
    assert m.world == "none" and len(m.books) == 0
    assert m.pick_book("乔峰带阿朱") is None
    assert not m.initial_state(1).any()  # today's behaviour: the zero state


def test_worlds_measurement_and_book_flags_on_the_command_line(tiny_world_run, world_corpus):
    model = str(tiny_world_run / "saved_model")
    out = run_python("-m", "train.evaluate", "--worlds", "--model", model, "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert 0.0 <= result["foreign_share"] <= 1.0 and result["prompts"] == 8
    assert result["own"] + result["foreign"] > 0
    scored = json.loads(run_python("-m", "train.evaluate", "--model", model, "--json", str(world_corpus)).stdout)
    assert [f["book"] for f in scored["files"].values()] == list(WORLD_CASTS)
    none = json.loads(run_python("-m", "train.evaluate", "--model", model, "--json", "--book", "none",
                                 str(world_corpus)).stdout)
    assert {f["book"] for f in none["files"].values()} == {None}
    assert none["nats_per_char"] != scored["nats_per_char"]
    listed = run_python("-m", "model", "--model", model, "--book")
    assert listed.returncode == 0 and listed.stdout.split() == list(WORLD_CASTS)
    picked = run_python("-m", "model", "乔峰", "--model", model, "--length", "5", "--seed", "1")
    assert picked.returncode == 0 and "[天龙]" in picked.stderr and picked.stdout.startswith("乔峰")
    bad = run_python("-m", "model", "乔峰", "--model", model, "--book", "红楼梦")
    assert bad.returncode == 2 and "天龙" in bad.stderr
    marks = json.loads(run_python("-m", "train.evaluate", "--format", "--model", model, "--json").stdout)
    assert marks["samples"] == 100 and marks["length"] == 600
    assert all(marks[k] >= 0 for k in ("missing_glyph", "corner_quotes", "wrapped_runs"))


@pytest.mark.parametrize("runtime", ["int8", "float32"])
def test_a_novel_given_at_every_character_travels_in_the_state(tiny_input_world_run, runtime):
    """World "input": the novel's id rides in one extra state row, so scoring and continuing
    need nothing but the state, and the artifact agrees with the Keras stepper."""
    from model.repeats import history_width
    from train import network
    from train.config import TrainConfig
    from train.data import score_streams
    from train.vocab import Vocabulary

    m = load(tiny_input_world_run / "saved_model", runtime=runtime)
    cfg = TrainConfig.load(tiny_input_world_run / "config.json")
    assert m.world == "input" and m.num_states == cfg.layers + 2  # + the novel's row, + the recent characters'
    a, b, none = (m.initial_state(1, book) for book in (*WORLD_CASTS, None))
    assert not a[:cfg.layers].any() and not b[:cfg.layers].any()  # the recurrent states start at zero
    assert (a[cfg.layers, 0, 0], b[cfg.layers, 0, 0], none[cfg.layers, 0, 0]) == (1, 2, 0)  # the novels' ids
    text = "　　乔峰在少林寺说道：“阿朱，点头。”"
    nll, _, after = m.score([text], a)
    np.testing.assert_array_equal(after[cfg.layers], a[cfg.layers])  # carried unchanged
    width = history_width(cfg.units)
    ids = [m.chars().index(c) for c in text[-width:]]
    assert after[-1, 0, :width].tolist() == ids  # the last characters read, the newest last
    vocab = Vocabulary.load(tiny_input_world_run / "vocab.json")
    model, stepper = network.build(cfg, len(vocab), len(WORLD_CASTS))
    model.load_weights(tiny_input_world_run / "best.weights.h5")
    for layer in model.layers:  # the artifact stores float16
        layer.set_weights([w.astype(np.float16).astype(np.float32) for w in layer.get_weights()])
    assert m.card.book_strength == 2.0  # the export's default: each novel's vector doubled, "no novel" as trained
    vectors = model.get_layer("book_input").get_weights()[0]
    model.get_layer("book_input").set_weights([np.concatenate([vectors[:1], 2.0 * vectors[1:]])])
    expected, _ = score_streams(stepper, stepper.get_layer("logits"), [vocab.encode(text)], cfg.layers,
                                network.top_state_index(cfg), cfg.units, chunk=7, books=np.array([1], np.int32))
    np.testing.assert_allclose(nll, expected, rtol=1e-4 if runtime == "float32" else 0.02)
    assert m.score([text], b)[0][0] != nll[0]
    whole, _ = m.generate(["乔峰"], length=40, temperature=0.9, seed=3)
    first, states = m.generate(["乔峰"], length=20, temperature=0.9, seed=3)
    second, _ = m.generate([""], states, length=20, temperature=0.9, seed=3, step=20)
    assert first[0] + second[0] == whole[0]


def test_format_defects_count_what_a_printed_book_would_not_have():
    from train.worlds import format_defects

    book = "　　乔峰道：“走吧。”\n　　阿朱点了点头，跟着他出了门，两人向北而去，一路无话。\n"
    assert format_defects(book) == {"missing_glyph": 0, "ocr_slips": 0, "corner_quotes": 0, "wrapped_runs": 0}
    wrapped = "　　乔峰走进客栈，\n　　只见店中坐着\n　　七八条汉子，\n　　都在喝酒\n未完"
    assert format_defects(wrapped)["wrapped_runs"] == 1
    talk = "　　“走！”\n　　“去哪？”\n　　“北边。”\n未完"  # short lines of dialogue are a book's own
    assert format_defects(talk)["wrapped_runs"] == 0
    assert format_defects("他说「好」，□〓") == {"missing_glyph": 2, "ocr_slips": 0, "corner_quotes": 2,
                                            "wrapped_runs": 0}
    assert format_defects("诸般胸囗，叹了囗气")["ocr_slips"] == 2  # 囗 (U+56D7) read by a scanner for 口


def test_a_cards_names_and_figures_are_measured_again_from_the_novels(tiny_world_run, world_corpus, tmp_path):
    """train.names --card rewrites a model's names from the novels; train.export --measure its figures."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_world_run / "saved_model", model)
    card = json.loads((model / "model.json").read_text())
    for b in card["books"]:
        b["names"] = {"一个": [9, 0.5]}  # what the names were before
    (model / "model.json").write_text(json.dumps(card, ensure_ascii=False))
    out = run_python("-m", "train.names", str(world_corpus), "--reference", str(world_corpus / "天龙.txt"),
                     "--card", str(model))
    assert out.returncode == 0, out.stderr
    names = {b["name"]: b["names"] for b in json.loads((model / "model.json").read_text())["books"]}
    assert "郭靖" in names["射雕"] and "一个" not in names["射雕"]
    assert "乔峰" not in names["天龙"]  # "another author" here wrote 天龙 itself: its names are common there
    out = run_python("-m", "train.export", "--measure", str(model), "--corpus", str(world_corpus))
    assert out.returncode == 0, out.stderr
    figures = json.loads((model / "model.json").read_text())["validation"]
    assert figures["artifact_chars"] > 0 and 0.0 <= figures["world_foreign_share"] <= 1.0
    assert set(figures["repetition"]) == {"temperature 0.5", "temperature 0.8", "temperature 1", "novels", "measure"}
    assert run_python("-m", "train.export", "--measure", str(model)).returncode == 2  # no --corpus: says so
