"""The shipped default model (model/default): loads with no flags, generates, scores."""

import json
import math

import pytest

from model import DEFAULT_MODEL_DIR
from tests.conftest import run_python

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
    assert out["states"] == [2, 1, 1024] and out["size"] > 4000


def test_shipped_model_card_and_size():
    card = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())
    assert len(card["corpus"]) == 14 and all(len(f["sha256"]) == 64 for f in card["corpus"])
    assert card["validation"]["tianlongbabu_tail_nats_per_char"] <= 3.50
    size = sum(f.stat().st_size for f in DEFAULT_MODEL_DIR.rglob("*") if f.is_file())
    assert size <= 50e6


def test_generate_cli_uses_the_shipped_model_by_default():
    r = run_python("-m", "model", "段誉", "--length", "30", "--seed", "1")
    assert r.returncode == 0 and r.stdout.startswith("段誉") and len(r.stdout.rstrip("\n")) == 32
