"""train.heldout: a run's tails scored with the training code match its exported artifact."""

import json

import pytest


def test_a_runs_tails_score_as_its_exported_artifact_does(tiny_input_world_run, tmp_path):
    from model import load
    from train.config import TrainConfig
    from train.corpus import read_corpus
    from train.evaluate import evaluate
    from train.export import export_run
    from train.heldout import heldout
    from train.loop import corpus_paths

    run = tiny_input_world_run
    result = heldout(run, chunk=50, report=lambda s: None)
    cfg = TrainConfig.load(run / "config.json")
    tails = [(n.file, n.split(cfg.holdout)[1]) for n in read_corpus(corpus_paths(run), report=lambda s: None)]
    # At the strength it was trained with (the shipped artifacts multiply the novels' vectors).
    artifact = load(export_run(run, tmp_path / "strength1", report=lambda s: None, book_strength=1.0), "float32")
    right, none = evaluate(artifact, tails), evaluate(artifact, tails, book=None)
    assert set(result["files"]) == {name for name, _ in tails} and len(tails) == 2
    for name, f in result["files"].items():
        assert right["files"][name]["book"] is not None  # auto found each tail's novel
        assert f["chars"] == right["files"][name]["chars"]
        assert f["nats_per_char"] == pytest.approx(right["files"][name]["nats_per_char"], abs=1e-4)
        assert f["nats_per_char_no_book"] == pytest.approx(none["files"][name]["nats_per_char"], abs=1e-4)
    assert result["nats_per_char"] == pytest.approx(right["nats_per_char"], abs=1e-4)
    assert result["nats_per_char"] != pytest.approx(result["nats_per_char_no_book"], abs=1e-6)


def test_the_command_prints_json_and_refuses_a_folder_that_is_no_run(tiny_run, tmp_path, capsys):
    from train.heldout import main

    assert main([str(tiny_run), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["chars"] == sum(f["chars"] for f in out["files"].values()) > 0
    assert main([str(tmp_path)]) == 2
    assert "no best.weights.h5" in capsys.readouterr().err
