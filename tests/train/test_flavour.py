"""The 金庸味 ruler measured on a model (train.flavour): the novels' held-out sentences into the card."""

import json
import random

from model import load
from model.flavour import Flavour, rate_texts
from tests.conftest import run_python
from train.flavour import sentences


def test_sentences_end_with_their_marks_and_quotes_and_short_ones_are_left_out():
    text = "乔峰道：“你来了？”阿朱点头。\n“哼！”\n他走了……然后又回来"
    assert sentences(text) == ["乔峰道：“你来了？”", "阿朱点头。", "他走了……"]


def test_the_ruler_is_in_the_card_and_finds_the_novels_form_more_jin_yong_than_its_shuffle(rated_model_dir):
    card = json.loads((rated_model_dir / "model.json").read_text())
    ruler = Flavour.from_card(card["flavour"])
    assert ruler is not None and sum(ruler.lines) > 10 and "held-out" in ruler.measure
    model = load(rated_model_dir)
    line = "乔峰道：“阿朱，叹了口气。”"
    shuffled = list(line)
    random.Random(3).shuffle(shuffled)
    nats, chars = rate_texts(model, [line, "".join(shuffled)])
    assert ruler.score(nats[0], chars[0]) > ruler.score(nats[1], chars[1])


def test_the_command_line_writes_the_ruler_and_refuses_a_missing_corpus(tiny_model_dir, tiny_corpus, tmp_path):
    import shutil

    copy = tmp_path / "m"
    shutil.copytree(tiny_model_dir, copy)
    done = run_python("-m", "train.flavour", str(copy), "--corpus", str(tiny_corpus), "--holdout", "0.2")
    assert done.returncode == 0, done.stderr
    assert "flavour written" in done.stdout and "sentences" in done.stdout
    assert Flavour.from_card(json.loads((copy / "model.json").read_text())["flavour"]) is not None
    missing = run_python("-m", "train.flavour", str(copy), "--corpus", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "error:" in missing.stderr and "Traceback" not in missing.stderr
