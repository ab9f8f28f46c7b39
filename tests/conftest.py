"""Shared fixtures: a tiny corpus the tests write themselves, and a tiny trained + exported run."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROOT = Path(__file__).resolve().parents[1]
SHARED_CORPUS = ROOT.parent / "shared" / "corpus"

# A made-up wuxia vocabulary: enough structure for a tiny model to learn in seconds.
NAMES = ["乔峰", "阿朱", "段誉", "王语嫣", "虚竹", "郭靖", "黄蓉"]
VERBS = ["说道", "笑道", "喝道", "点头", "拔剑", "出掌", "叹了口气"]
PLACES = ["少林寺", "大理", "聚贤庄", "桃花岛", "雁门关"]


def make_story(seed: int, paragraphs: int = 40, names: list[str] = NAMES) -> str:
    rng = random.Random(seed)
    out = []
    for _ in range(paragraphs):
        sents = []
        for _ in range(rng.randint(2, 4)):
            a, b = rng.sample(names, 2)
            if rng.random() < 0.5:  # "郭靖道：" — how novels name who speaks (train.names reads it)
                sents.append(f"{a}道：“{b}，{rng.choice(VERBS)}。”")
            else:
                sents.append(f"{a}在{rng.choice(PLACES)}{rng.choice(VERBS)}：“{b}，{rng.choice(VERBS)}。”")
        out.append("　　" + "".join(sents))
    return "\n".join(out) + "\n"


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """Three small novels: UTF-8, GB18030 with CRLF and site lines, UTF-8 with BOM."""
    d = tmp_path_factory.mktemp("corpus")
    (d / "one.txt").write_text(make_story(1), encoding="utf-8")
    noisy = "本书来自www.example.com免费txt小说下载站\n" + make_story(2) + "更多更新免费电子书请关注www.example.com\n"
    (d / "two.txt").write_bytes(noisy.replace("\n", "\r\n").encode("gb18030"))
    (d / "three.txt").write_bytes(b"\xef\xbb\xbf" + make_story(3).encode("utf-8"))
    return d


def tiny_config(**over):
    from train.config import TrainConfig

    base = dict(units=24, layers=2, embedding_dim=12, batch_size=16, seq_len=32, epochs=2, dropout=0.0,
                warmup_steps=5, learning_rate=1e-2, lr_min=1e-3, val_chunk=64, seed=7)
    base.update(over)
    return TrainConfig(**base)


def resumed_against_straight(corpus: Path, tmp_path: Path, **config) -> tuple[dict, dict]:
    """Train tiny_config(**config) on `corpus` straight through, and again cut after its first
    epoch (a time budget no epoch fits in) and resumed; assert both give the same validation
    history. Returns the two reports (straight, resumed); the runs are tmp_path/"straight", /"cut"."""
    import numpy as np

    from train.loop import train

    quiet = lambda s: None  # noqa: E731
    straight = train(tmp_path / "straight", [str(corpus)], tiny_config(**config), report=quiet)
    first = train(tmp_path / "cut", [str(corpus)], tiny_config(**config, time_budget=1e-9), report=quiet)
    assert first["epochs_run"] == 1
    resumed = train(tmp_path / "cut", None, None, resume=True, time_budget=0, report=quiet)
    np.testing.assert_allclose([h["val_nats"] for h in resumed["history"]],
                               [h["val_nats"] for h in straight["history"]], rtol=1e-5)
    return straight, resumed


def trained_and_exported(corpus: Path, tmp_path_factory, name: str, **config) -> Path:
    """A tiny run trained on `corpus` with tiny_config(**config), exported to RUN/saved_model."""
    from train.export import export_run
    from train.loop import train

    run = tmp_path_factory.mktemp("run") / name
    train(run, [str(corpus)], tiny_config(**config), report=lambda s: None)
    export_run(run, report=lambda s: None)
    return run


@pytest.fixture(scope="session")
def tiny_run(tiny_corpus, tmp_path_factory) -> Path:
    """A 2-layer GRU trained for two epochs on the tiny corpus and exported."""
    return trained_and_exported(tiny_corpus, tmp_path_factory, "tiny")


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_run) -> Path:
    return tiny_run / "saved_model"


# Two made-up novels whose casts do not meet, for the world-aware model.
WORLD_CASTS = {"天龙": ["乔峰", "阿朱", "段誉", "虚竹"], "射雕": ["郭靖", "黄蓉", "洪七公", "欧阳锋"]}


@pytest.fixture(scope="session")
def world_corpus(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("world_corpus")
    for i, (book, cast) in enumerate(WORLD_CASTS.items()):
        (d / f"{book}.txt").write_text(make_story(20 + i, paragraphs=60, names=cast), encoding="utf-8")
    return d


@pytest.fixture(scope="session")
def tiny_world_run(world_corpus, tmp_path_factory) -> Path:
    """A tiny model that knows its novel (a learned starting state per novel), trained and exported."""
    return trained_and_exported(world_corpus, tmp_path_factory, "world", world="state", epochs=3)


@pytest.fixture(scope="session")
def tiny_input_world_run(world_corpus, tmp_path_factory) -> Path:
    """A tiny model given its novel at every character (world "input"), trained and exported."""
    return trained_and_exported(world_corpus, tmp_path_factory, "input-world", world="input", epochs=3)


def run_python(*args, cwd=None, env=None, timeout=300, input=None) -> subprocess.CompletedProcess:
    """Run `python ARGS` in a fresh process (the repo importable, as after pip install -e .)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=cwd or ROOT, env=full_env, capture_output=True,
                          text=True, timeout=timeout, input=input)


@pytest.fixture(scope="session")
def rated_model_dir(tiny_model_dir, tiny_corpus, tmp_path_factory) -> Path:
    """A copy of the tiny model whose card has a 金庸味 ruler measured on the tiny corpus (train.flavour)."""
    import shutil

    from train.corpus import read_corpus
    from train.flavour import write_flavour

    copy = tmp_path_factory.mktemp("rated") / "saved_model"
    shutil.copytree(tiny_model_dir, copy)
    write_flavour(copy, read_corpus([str(tiny_corpus)], report=lambda s: None), holdout=0.2)
    return copy
