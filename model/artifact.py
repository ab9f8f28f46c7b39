"""Loading a OneStep SavedModel and calling it from Python with checked arguments.

    from model import load
    m = load()                                   # the shipped default model
    texts, states = m.generate(["乔峰带阿朱"], length=200, temperature=0.8, seed=1)   # novel picked from the names
    texts, states = m.generate([""], states, length=200, temperature=0.8, seed=1, step=200)
    m.generate(["他走进客栈"], book="天龙八部")     # a novel by name; book=None: no novel
    m.pick_book("郭靖对黄蓉说")                    # "射雕英雄传" (None when the prompt names no one)
    exact = load(runtime="float32")              # the SavedModel's float32 graph (default: int8, faster)

Everything that reaches the model passes through here, so bad arguments give a
ValueError that says what is allowed rather than a TensorFlow traceback.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
from pathlib import Path

import numpy as np

from model.books import AUTO, Books
from model.card import FORMAT, ModelCard
from model.quant import dequantize
from model.sampling import never_mask
from model.weights import RecurrentLayer, Weights

# The shipped default model, committed with the code.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default"
MAX_LENGTH = 100_000  # characters in one generate call
# How generate and score run: "int8" (default) derives 8-bit weights from the SavedModel at load
# and runs them with ONNX Runtime (model.int8, 3-7x faster); "float32" is the SavedModel's own
# graph with its weights exact. The environment variable RUNTIME sets the default.
RUNTIMES = ("int8", "float32")
DEFAULT_RUNTIME = "int8"


def check_runtime(runtime: str | None) -> str:
    """The runtime to use: `runtime`, else $RUNTIME, else int8; ValueError naming the choices if unknown."""
    chosen = runtime or os.environ.get("RUNTIME") or DEFAULT_RUNTIME
    if chosen not in RUNTIMES:
        raise ValueError(f"unknown runtime {chosen!r}: use one of {', '.join(RUNTIMES)}")
    return chosen


class ModelError(Exception):
    """A model directory that cannot be used; the message names it and says what is wrong."""


def check_model_dir(path: str | Path) -> ModelCard:
    """Check that `path` holds a complete SavedModel of our format; return its model card."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such model directory")
    if not path.is_dir():
        raise ModelError(f"{path}: not a directory (a model is a SavedModel directory)")
    missing = [n for n in ("saved_model.pb", "model.json", "variables/variables.index") if not (path / n).exists()]
    if (path / "variables").is_dir() and not any((path / "variables").glob("variables.data-*")):
        missing.append("variables/variables.data-*")
    if missing:
        raise ModelError(f"{path}: incomplete model directory, missing {', '.join(missing)}")
    try:
        data = json.loads((path / "model.json").read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: unreadable model.json ({e})") from None
    try:
        return ModelCard.from_json(data)
    except ValueError as e:
        hint = "; re-export it with python -m train.export" if isinstance(data, dict) and \
            data.get("format") != FORMAT else ""
        raise ModelError(f"{path}: {e}{hint}") from None


def release_freed_memory() -> None:
    """Hand freed heap pages back to the system (glibc's malloc_trim; nothing elsewhere).

    Building the int8 runtime makes ~150 MB of float32 copies that are freed at once, but
    glibc keeps their pages: without this the bot holds ~100 MB more for its whole life."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        pass


def check_sampling(temperature: float, top_k: int = 0, top_p: float = 1.0) -> None:
    """Raise ValueError unless the sampling settings are usable."""
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be a number, not {temperature!r}") from None
    if not math.isfinite(t) or t <= 0:
        raise ValueError(f"temperature must be finite and > 0, not {temperature}")
    if int(top_k) < 0:
        raise ValueError("top_k must be 0 (off) or more")
    if not 0.0 < float(top_p) <= 1.0:
        raise ValueError("top_p must be in (0, 1] (1 = off)")


class CharModel:
    """A loaded OneStep SavedModel. States are NumPy arrays [S, B, H]."""

    def __init__(self, path: str | Path | None = None, runtime: str | None = None, weight_bits: int | None = None):
        self.path = Path(path) if path is not None else DEFAULT_MODEL_DIR
        self.runtime = check_runtime(runtime)
        self.card = check_model_dir(self.path)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf  # noqa: PLC0415  (slow import, only when a model is loaded)

        self._tf = tf
        try:
            self._m = tf.saved_model.load(str(self.path))
        except Exception as e:  # noqa: BLE001  (a damaged SavedModel can fail in many ways)
            raise ModelError(f"{self.path}: cannot load SavedModel ({type(e).__name__}: {str(e)[:200]})") from None
        self._run = self._in_process() if self.runtime == "float32" else self._int8(weight_bits)
        self.num_states = int(self._m.num_states.numpy())
        self.units = int(self._m.state_units.numpy())
        self.vocab_size = int(self._m.vocab_size.numpy())
        self.world = self.card.world
        # Novels the model can write in (none for a model trained without a world).
        self.books = Books(self.card.books if self.world != "none" else [])
        stored = self._m.book_states.numpy()  # [K+1, S-1, H]; the recent characters' row starts empty
        self._book_states = np.concatenate([stored, np.zeros_like(stored[:, :1])], axis=1)  # [K+1, S, H]

    @property
    def runtime_form(self) -> str:
        """How generate and score run, in words: "int8 (batched kernel: 7-bit weights)" or "float32"."""
        if self.runtime != "int8":
            return self.runtime
        step = self._run.step
        return f"int8 (batched kernel: {step.weight_bits}-bit weights; one-row kernel up to {step.gemv_rows} rows)"

    def weights(self) -> Weights:
        """The artifact's weights by role, as NumPy arrays (float16 as stored; 8-bit matrices widened to float32)."""
        saved = self._m

        def matrix(v, axis: int = 0):  # a Variable, or (storage int8) q and a scale per column / per row
            return dequantize(v.q.numpy(), v.scale.numpy(), axis) if hasattr(v, "q") else v.numpy()

        return Weights(
            embedding=matrix(saved.embedding, axis=1), dense_kernel=matrix(saved.dense_kernel),
            dense_bias=saved.dense_bias.numpy(), book_states=saved.book_states.numpy(),
            rnn=[RecurrentLayer(matrix(k), matrix(r), b.numpy())
                 for k, r, b in zip(saved.kernels, saved.recurrents, saved.biases)],
            book_gates=saved.book_gates.numpy() if hasattr(saved, "book_gates") else None)  # world "input"

    def chars(self) -> list[str]:
        return [c.decode("utf-8") for c in self._m.vocab.numpy()]

    def _in_process(self):
        """The same OneStep graph, rebuilt here with the weights widened to float32 once.

        The SavedModel's own functions widen its float16 weights on every call; for one
        of the bot's chunks (12 characters first, then 64) that is a large share of the time. Here they are
        widened once (exact), and the embedding is folded into layer 0's input
        projection (a gather instead of a matmul per character). The numbers agree
        with the SavedModel's to float32 rounding (a test checks it).
        """
        from model.onestep import OneStep  # noqa: PLC0415

        return OneStep(self.weights(), self.chars(), self.card.architecture.cell, self.card.to_json(),
                       dtype=self._tf.float32, fold_input=True)

    def _int8(self, weight_bits: int | None):
        """generate and score on 8-bit weights derived from the SavedModel's (model.int8, model.runtime);
        weight_bits: the batched kernel's weights, 8 or 7 (None: by the CPU, see model.int8)."""
        from model.int8 import Int8Step  # noqa: PLC0415  (ONNX Runtime loads only for this runtime)
        from model.runtime import StepRuntime  # noqa: PLC0415

        chars = self.chars()
        runtime = StepRuntime(Int8Step(self.weights(), self.card.architecture.cell, never_mask(chars), chars=chars,
                                       weight_bits=weight_bits), chars)
        release_freed_memory()
        return runtime

    def warm_up(self) -> None:
        """Run each path once now (about a second) rather than on the first request; on int8, time
        its two kernels for small batches on this CPU (model.int8's calibrate, about half a second)."""
        self.generate(["乔峰", "段誉"], length=1, temperature=1.0, seed=0)
        self.generate(["乔峰"], length=1, temperature=1.0, seed=0)
        self.score(["乔峰"])
        if self.runtime == "int8":
            self._run.step.calibrate(list(self.initial_state(1)))

    def pick_book(self, prompt: str) -> str | None:
        """The novel a prompt's character names point to, or None (see model.books)."""
        return self.books.pick(prompt)

    def resolve_book(self, book: str | None, prompt: str = "") -> str | None:
        """"auto" → the novel the prompt points to; a name → itself (ValueError if unknown); None → None."""
        return self.books.resolve(book, prompt)

    def initial_state(self, batch_size: int = 1, book: str | None = None) -> np.ndarray:
        """[S, B, H]: the state a story in `book` (a name; None = no novel) starts from."""
        row = self._book_states[self.books.id_of(book)]  # [S, H]
        return np.repeat(row[:, None, :], batch_size, axis=1).astype(np.float32)

    def start_states(self, prompts: list[str], book: str | None = AUTO) -> tuple[np.ndarray, list[str | None]]:
        """([S, B, H], novel of each row): each prompt's starting state, its novel resolved from `book`."""
        chosen = [self.resolve_book(book, p) for p in prompts]
        rows = [self._book_states[self.books.id_of(b)] for b in chosen]
        states = np.stack(rows, axis=1) if rows else self.initial_state(0)
        return states.astype(np.float32), chosen

    def _states(self, states, batch: int) -> np.ndarray:
        if states is None:
            return self.initial_state(batch)
        states = np.asarray(states, np.float32)
        if states.shape != (self.num_states, batch, self.units):
            raise ValueError(f"states must have shape {(self.num_states, batch, self.units)}, not {states.shape}")
        return states

    def generate(self, prompts: list[str], states=None, length: int = 200, temperature=1.0, top_k=0, top_p=1.0,
                 seed: int | None = None, step: int = 0, book: str | None = AUTO,
                 ban_loops=True) -> tuple[list[str], np.ndarray]:
        """Read the prompts, then sample `length` characters per row: (texts, states).

        temperature, top_k, top_p and ban_loops are a value for all rows or one per row;
        ban_loops: never write a stutter loop (model.repeats; the states remember the last
        characters, so the ban holds across calls). Without
        `states`, each row starts in its novel: `book` "auto" (default) picks it from the
        prompt's names, a name sets it, None starts with no novel; with `states` the
        story goes on from them and `book` is not used.
        """
        b = len(prompts)
        if states is None:
            states, _ = self.start_states(prompts, book)
        rows = lambda v: list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v] * b  # noqa: E731
        temps, ks, ps, bans = rows(temperature), rows(top_k), rows(top_p), rows(ban_loops)
        if not len(temps) == len(ks) == len(ps) == len(bans) == b:
            raise ValueError("temperature, top_k, top_p and ban_loops take one value, or one per prompt")
        for t, k, p in zip(temps, ks, ps):
            check_sampling(t, k, p)
        temps, ks, ps = np.array(temps, np.float32), np.array(ks, np.int32), np.array(ps, np.float32)
        bans = np.array([bool(x) for x in bans])
        if not 0 <= int(length) <= MAX_LENGTH:
            raise ValueError(f"length must be in [0, {MAX_LENGTH}]")
        if int(length) == 0:  # only read the prompts: their states, as generate would leave them
            _, _, read = self.score(list(prompts), self._states(states, b))
            return [""] * b, read
        if seed is None:
            seed = int(np.random.default_rng().integers(0, 2**62))
        if self.runtime == "int8":
            return self._run.generate(list(prompts), self._states(states, b), int(length), temps, ks, ps,
                                      int(seed), int(step), bans)
        tf = self._tf
        out = self._run.generate(
            tf.constant(list(prompts), tf.string), tf.constant(self._states(states, b)), tf.constant(int(length)),
            tf.constant(temps), tf.constant(ks), tf.constant(ps), tf.constant(int(seed), tf.int64),
            tf.constant(int(step), tf.int64), tf.constant(bans))
        return [t.decode("utf-8") for t in out["text"].numpy()], out["states"].numpy()

    def score(self, texts: list[str], states=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(total nll in nats [B], characters [B], states) — the state carried from `states`."""
        if self.runtime == "int8":
            return self._run.score(list(texts), self._states(states, len(texts)))
        tf = self._tf
        out = self._run.score(tf.constant(list(texts), tf.string), tf.constant(self._states(states, len(texts))))
        return out["nll"].numpy(), out["chars"].numpy(), out["states"].numpy()


def load(path: str | Path | None = None, runtime: str | None = None, weight_bits: int | None = None) -> CharModel:
    """Load the model at `path`, or the shipped default, to run with `runtime` (see RUNTIMES); int8's
    batched kernel with `weight_bits` 8 or 7 (None: $INT8_WEIGHT_BITS, else by the CPU)."""
    return CharModel(path, runtime, weight_bits)
