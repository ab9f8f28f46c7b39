"""The command lines on a model: python -m model and python -m train.evaluate."""

import json
import math

from tests.conftest import run_python


def test_generate_prints_prompt_and_continuation(tiny_model_dir):
    r = run_python("-m", "model", "乔峰带阿朱", "--length", "40", "--temperature", "0.8", "--seed", "3",
                   "--model", str(tiny_model_dir))
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout.rstrip("\n")
    assert out.startswith("乔峰带阿朱") and len(out) == len("乔峰带阿朱") + 40


def test_generate_rejects_bad_temperature_without_traceback(tiny_model_dir):
    r = run_python("-m", "model", "乔峰", "--temperature", "nan", "--model", str(tiny_model_dir))
    assert r.returncode == 2 and "temperature must be finite and > 0" in r.stderr and "Traceback" not in r.stderr


def test_generate_names_a_missing_model(tmp_path):
    r = run_python("-m", "model", "乔峰", "--model", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "nowhere: no such model directory" in r.stderr and "Traceback" not in r.stderr


def test_evaluate_json_is_one_object(tiny_model_dir, tiny_corpus):
    r = run_python("-m", "train.evaluate", "--model", str(tiny_model_dir), str(tiny_corpus), "--json",
                   "--chunk", "50")
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(r.stdout)  # exactly one JSON document on stdout
    assert {"nats_per_char", "bits_per_char", "perplexity", "chars"} <= set(result)
    assert math.isclose(result["bits_per_char"], result["nats_per_char"] / math.log(2))
    assert math.isclose(result["perplexity"], math.exp(result["nats_per_char"]))
    assert result["chars"] == sum(f["chars"] for f in result["files"].values())
    # Chunking carries the state: a different chunk size scores the same text the same.
    r2 = run_python("-m", "train.evaluate", "--model", str(tiny_model_dir), str(tiny_corpus), "--json",
                    "--chunk", "333")
    assert math.isclose(json.loads(r2.stdout)["nats_per_char"], result["nats_per_char"], rel_tol=1e-5)
    # --exact scores with the float32 graph: within the int8 runtime's stated tolerance, and not the same run.
    r3 = run_python("-m", "train.evaluate", "--model", str(tiny_model_dir), str(tiny_corpus), "--json", "--exact")
    exact = json.loads(r3.stdout)["nats_per_char"]
    assert abs(exact - result["nats_per_char"]) < 0.01 and exact != result["nats_per_char"]


def test_evaluate_bad_file_is_one_line(tiny_model_dir, tmp_path):
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01")
    r = run_python("-m", "train.evaluate", "--model", str(tiny_model_dir), str(tmp_path / "bin.txt"))
    assert r.returncode == 2 and "looks binary" in r.stderr and "Traceback" not in r.stderr
