"""The benchmarks run end to end on the tiny model and report every figure they promise (not their speed)."""

import json

import pytest

from tests.conftest import run_python


def result_of(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, stdout[-2000:]
    return json.loads(lines[0].removeprefix("RESULT "))


@pytest.mark.slow
def test_speed_benchmark_reports_baseline_roofline_and_memory(tiny_model_dir):
    out = run_python("-m", "bench.speed", "--model", str(tiny_model_dir), "--length", "20", "--repeats", "1",
                     "--chats", "3", "--more-chats", "4", "--idle-chats", "10", timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    r = result_of(out.stdout)
    for key in ("notebook_cps", "notebook_ours_cps", "single_cps", "concurrent3_cps", "single_vs_notebook",
                "concurrent3_vs_notebook", "concurrent4_batch32_cps", "concurrent4_batch4_cps", "bytes_per_char",
                "flops_per_char", "bandwidth_gbs", "int8_gemm_gflops", "rss_mb", "first_text_single_s"):
        assert r[key] > 0, key
    assert 0 <= r["bandwidth_fraction"] and 0 <= r["compute_fraction"]  # a tiny model is far from either cap
    assert r["runtime"] == "int8" and r["idle_chats"] == 10
    # 2 layers of 24 units over the tiny vocabulary: recurrent ×2, layer 1's kernel, and the output layer.
    assert r["flops_per_char"] > 2 * 3 * 24 * 72


@pytest.mark.slow
def test_runtime_comparison_scores_every_runtime_against_float32(tiny_model_dir):
    out = run_python("-m", "bench.runtimes", "--model", str(tiny_model_dir), "--length", "10", "--batch", "3",
                     timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    runtimes = result_of(out.stdout)["runtimes"]
    assert set(runtimes) == {"tensorflow-float32", "onnxruntime-float32", "onnxruntime-gemv", "onnxruntime-gemm",
                             "onnxruntime-gemv, no repetition policy", "onnxruntime-gemm, no repetition policy",
                             "onnxruntime-gemm, 7-bit weights", "onnxruntime-gemm, 8-bit weights", "tflite-int8"}
    reference = runtimes["tensorflow-float32"]["nats_per_char"]
    for name, figures in runtimes.items():
        assert figures["single_cps"] > 0 and figures["batch_cps"] > 0
        if name.endswith("8-bit weights") and result_of(out.stdout)["gemm_weight_bits"] == 7:
            continue  # shown for comparison: a CPU without VNNI sums 8-bit products with overflow, so never uses it
        assert abs(figures["nats_per_char"] - reference) < 0.02, name


@pytest.mark.slow
def test_many_chats_benchmark_keeps_at_most_the_resident_states_and_an_evicted_chat_continues(tiny_model_dir):
    out = run_python("-m", "bench.chats", "--model", str(tiny_model_dir), "--chats", "60", "--slice", "20",
                     "--resident", "25", "--length", "5", timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    r = result_of(out.stdout)
    assert r["chats"] == 60 and r["resident_chats"] <= 25 and r["rss_mb"] > 0
    assert r["first_chat_continued"]  # chat 1 was evicted long before; its /continue re-read its story
