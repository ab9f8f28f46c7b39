"""The training loop: epochs of `fit`, carried-state validation, checkpoints, resume.

Everything a run writes lives in its run directory:

    RUN/config.json          every knob (TrainConfig)
    RUN/vocab.json           the characters, id order, [UNK] first
    RUN/corpus.json          files used: sha256, encoding, characters trained / held out, normalisation
    RUN/books.json           the novels (id 1..K, in corpus order) and their character names (train.names)
    RUN/parent.json          the model this run started from (--init-from), when there is one
    RUN/checkpoint/          last epoch: weights, optimizer state, progress (for --resume)
    RUN/best.weights.h5      the weights with the best validation loss so far
    RUN/history.csv          one line per epoch
    RUN/curves.png           training and validation curves (train.curves), redrawn every epoch (with matplotlib)
    RUN/logs/                TensorBoard logs (when TensorFlow is installed)
    RUN/report.json          the training report, written at the end
    RUN/saved_model/         the exported OneStep SavedModel and its model.json card
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np

from train import curves, distill, network
from train.config import TrainConfig
from train.corpus import read_corpus
from train.data import epoch_batches, score_streams, steps_per_epoch
from train.names import book_names
from train.normalise import Normalisation
from train.parent import Parent, check_architecture, child_vocabulary, child_weights, load_parent, save_record
from train.vocab import Vocabulary

LN2 = math.log(2.0)


class TrainingError(Exception):
    """A run that cannot start or continue; the message says why."""


def load_corpus(paths: list[str], cfg: TrainConfig, report=print):
    """(novels, training texts, held-out texts)."""
    novels = read_corpus(paths, report=report, options=Normalisation(quotes=cfg.quotes))
    parts = [n.split(cfg.holdout) for n in novels]
    return novels, [p[0] for p in parts], [p[1] for p in parts]


def corpus_paths(run: Path) -> list[str]:
    """The corpus files and folders a run was trained on, as given (RUN/corpus.json)."""
    return json.loads((Path(run) / "corpus.json").read_text())["paths"]


def corpus_card(novels, train_texts, val_texts) -> list[dict]:
    return [
        {"file": n.file, "book": n.name, "sha256": n.sha256, "encoding": n.encoding, "chars": len(n.text),
         "train_chars": len(t), "heldout_chars": len(v), "lines_dropped": n.lines_dropped,
         "bytes_dropped": n.bytes_dropped, "repeats_dropped": n.repeats_dropped, "normalised": n.changes.as_dict()}
        for n, t, v in zip(novels, train_texts, val_texts)
    ]


def books_card(novels, train_texts, reference: str = "") -> dict:
    """books.json: the novels by id (1..K; 0 is "no novel") and the names each one makes frequent
    (`reference`: other authors' novels, whose common words are no names)."""
    others = [n.text for n in read_corpus([reference], report=lambda s: None)] if reference else None
    return {"books": [{"id": i + 1, "name": n.name, "file": n.file} for i, n in enumerate(novels)],
            "names": book_names({n.name: t for n, t in zip(novels, train_texts)}, reference=others)}


def book_of_chars(train_texts: list[str]) -> np.ndarray:
    """int16 [total chars]: the novel (1..K) of every training character, in concatenation order."""
    return np.repeat(np.arange(1, len(train_texts) + 1, dtype=np.int16), [len(t) for t in train_texts])


def make_optimizer(cfg: TrainConfig, total_steps: int) -> keras.optimizers.Optimizer:
    warmup = min(cfg.warmup_steps, max(0, total_steps - 1))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else cfg.learning_rate,
        decay_steps=max(1, total_steps - warmup),
        alpha=cfg.lr_min / cfg.learning_rate,
        warmup_target=cfg.learning_rate if warmup else None,
        warmup_steps=warmup,
    )
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=cfg.weight_decay, clipnorm=cfg.clipnorm)


def save_checkpoint(run: Path, model, optimizer, progress: dict) -> None:
    """Write the checkpoint atomically enough: files first, progress.json last."""
    ck = run / "checkpoint"
    ck.mkdir(exist_ok=True)
    model.save_weights(ck / "weights.weights.h5")
    np.savez(ck / "optimizer.npz", *[np.asarray(v) for v in optimizer.variables])
    tmp = ck / "progress.json.tmp"
    tmp.write_text(json.dumps(progress, indent=2))
    os.replace(tmp, ck / "progress.json")


def load_checkpoint(run: Path, model, optimizer, trainable: list) -> dict:
    """Restore the weights into `model` and the optimizer's state for `trainable` (the variables
    `fit` trains, in its order)."""
    ck = run / "checkpoint"
    if not (ck / "progress.json").exists():
        raise TrainingError(f"{run}: no checkpoint to resume from (missing {ck / 'progress.json'})")
    optimizer.build(trainable)
    model.load_weights(ck / "weights.weights.h5")
    saved = np.load(ck / "optimizer.npz")
    arrays = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    if len(arrays) != len(optimizer.variables):
        raise TrainingError(f"{ck}: optimizer state does not match this model")
    for var, value in zip(optimizer.variables, arrays):
        var.assign(value)
    return json.loads((ck / "progress.json").read_text())


def compile_for_training(cfg: TrainConfig, model, optimizer, vocab: Vocabulary, books: list[str]):
    """The model `fit` trains: `model` itself with cross-entropy on the text, or with a teacher
    (cfg.teacher) the pair of both, learning from the text and the teacher's predictions
    (train.distill). Either way only `model`'s weights change, and only they are saved."""
    if not cfg.teacher:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")
        model.compile(optimizer=optimizer, loss=loss)
        return model
    try:
        teacher = distill.load_teacher(cfg.teacher, cfg, vocab, books)
    except distill.TeacherError as e:
        raise TrainingError(str(e)) from None
    fitted = distill.pair(model, teacher)
    fitted.compile(optimizer=optimizer, loss=distill.DistillationLoss(cfg.distill),
                   weighted_metrics=[distill.student_nats])
    return fitted


def hardware() -> str:
    backend = keras.backend.backend()
    if backend == "jax":
        import jax  # noqa: PLC0415  (only on the JAX backend)

        devs = jax.devices()
        return f"{len(devs)}× {devs[0].device_kind}" if devs[0].platform != "cpu" else f"CPU ({os.cpu_count()} cores)"
    return f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"


class ScalarLog:
    """history.csv always; TensorBoard scalars when TensorFlow is installed."""

    def __init__(self, run: Path):
        self.csv = run / "history.csv"
        self.writer = None
        try:  # TensorBoard needs TensorFlow's summary writer; the GPU machine has none.
            import tensorboard  # noqa: F401, PLC0415
            import tensorflow as tf  # noqa: PLC0415

            self.tf = tf
            self.writer = tf.summary.create_file_writer(str(run / "logs"))
        except ImportError:
            pass

    def write(self, epoch: int, row: dict) -> None:
        new = not self.csv.exists()
        with self.csv.open("a") as f:
            if new:
                f.write("epoch," + ",".join(row) + "\n")
            f.write(f"{epoch}," + ",".join(f"{v:.6g}" for v in row.values()) + "\n")
        if self.writer is not None:
            with self.writer.as_default():
                for k, v in row.items():
                    self.tf.summary.scalar(k, v, step=epoch)
            self.writer.flush()


def validate(cfg: TrainConfig, stepper, val_ids: list[np.ndarray], start: np.ndarray | None = None,
             use_books: bool = True) -> tuple[float, int]:
    """Held-out cross-entropy in nats/char, the state carried through each file's tail."""
    nll, counts = score_tails(cfg, stepper, val_ids, start, use_books)
    return float(nll.sum() / counts.sum()), int(counts.sum())


def score_tails(cfg: TrainConfig, stepper, val_ids: list[np.ndarray], start: np.ndarray | None = None,
                use_books: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Summed nll (nats) and characters per file [len(val_ids)], each tail's first
    cfg.val_max_chars (0: all) read in one stream, the state carried.

    With a world, file i's tail starts from novel i+1's state in `start` [K+1, S, units]
    (the right novel, as auto picks it), or from the "no novel" row when use_books is False.
    """
    keep = [i for i, v in enumerate(val_ids) if len(v)]
    nll, counts = np.zeros(len(val_ids)), np.zeros(len(val_ids), np.int64)
    if not keep:
        return nll, counts
    streams = [val_ids[i][: cfg.val_max_chars] if cfg.val_max_chars else val_ids[i] for i in keep]
    begin = books = None
    if start is not None and cfg.world != "none":
        rows = [i + 1 if use_books else 0 for i in keep]
        begin = start[rows]
        books = np.array(rows, np.int32) if cfg.world == "input" else None
    nll[keep], counts[keep] = score_streams(
        stepper, stepper.get_layer("logits"), streams, n_states=cfg.recurrent_states,
        top=network.top_state_index(cfg), units=cfg.units, chunk=cfg.val_chunk, start=begin, books=books)
    return nll, counts


def train(run: Path, corpus: list[str] | None, cfg: TrainConfig | None, resume: bool = False,
          epochs: int | None = None, time_budget: float | None = None, report=print,
          parent: Parent | None = None) -> dict:
    """Train (or resume) the run in `run`; returns the training report.

    With cfg.init_from the run starts from that model's weights (`parent`, if already
    loaded, saves reading it again); a resumed run starts from its own checkpoint."""
    run = Path(run)
    if resume:
        if not (run / "config.json").exists():
            raise TrainingError(f"{run}: not a run directory (no config.json); nothing to resume")
        cfg = TrainConfig.load(run / "config.json")
        corpus = corpus or corpus_paths(run)
    elif (run / "checkpoint" / "progress.json").exists():
        raise TrainingError(f"{run} already holds a run: pass --resume to continue it, or choose another --out")
    if epochs is not None:
        cfg.epochs = epochs
    if time_budget is not None:
        cfg.time_budget = time_budget
    cfg.validate()
    keras.utils.set_random_seed(cfg.seed)

    novels, train_texts, val_texts = load_corpus(corpus, cfg, report)
    card = corpus_card(novels, train_texts, val_texts)
    if resume:
        old = json.loads((run / "corpus.json").read_text())["files"]
        if [f["sha256"] for f in old] != [f["sha256"] for f in card]:
            raise TrainingError(f"{run}: the corpus files differ from the ones this run started with")
        vocab = Vocabulary.load(run / "vocab.json")
    else:
        if cfg.init_from:
            parent = parent or load_parent(cfg.init_from)
            check_architecture(cfg, parent)
        run.mkdir(parents=True, exist_ok=True)
        vocab = Vocabulary.build(train_texts, cfg.min_count)
        if parent is not None:
            vocab = child_vocabulary(parent, vocab, cfg.keep_parent_chars)
        if cfg.world == "token":
            vocab = vocab.with_book_tokens(len(novels))
        cfg.save(run / "config.json")
        vocab.save(run / "vocab.json")
        if parent is not None:
            save_record(run, parent, vocab.chars)
        (run / "books.json").write_text(json.dumps(books_card(novels, train_texts, cfg.names_reference), indent=1,
                                                   ensure_ascii=False))
        (run / "corpus.json").write_text(json.dumps(
            {"paths": [str(p) for p in corpus], "files": card}, indent=2, ensure_ascii=False))
    train_ids = vocab.encode("".join(train_texts))
    train_books = book_of_chars(train_texts)
    val_ids = [vocab.encode(t) for t in val_texts]
    n_books = len(novels) if cfg.world != "none" else 0
    steps = steps_per_epoch(len(train_ids), cfg)
    report(f"vocabulary {len(vocab):,} (min count {cfg.min_count}); {len(train_ids):,} training chars, "
           f"{sum(map(len, val_ids)):,} held out; {steps} steps of {cfg.batch_size}×{cfg.seq_len} per epoch"
           f"{' (state carried across batches)' if cfg.carry_state else ''}"
           f"{f'; {n_books} novels, world {cfg.world!r}' if n_books else ''}")

    model, stepper = network.build(cfg, len(vocab), n_books)
    optimizer = make_optimizer(cfg, steps * cfg.epochs)
    fitted = compile_for_training(cfg, model, optimizer, vocab, [n.name for n in novels])
    progress = {"epoch": 0, "best_val": None, "best_epoch": None, "history": [], "seconds": 0.0}
    if resume:
        progress = load_checkpoint(run, model, optimizer, fitted.trainable_variables)
        report(f"resuming after epoch {progress['epoch']}")
    elif parent is not None:
        network.set_role_weights(cfg, model, child_weights(parent, vocab.chars, [n.name for n in novels]))
        start = network.book_start_states(cfg, model, n_books, vocab.token_base)
        progress["val_at_start"] = validate(cfg, stepper, val_ids, start)[0]  # the parent, on this corpus's tails
        report(f"starting from {parent.path} ({parent.name}): {len(parent.chars):,} characters known, "
               f"{parent.record(vocab.chars)['new_chars']:,} new; validation before training "
               f"{progress['val_at_start']:.4f} nats/char")
    report(f"{model.count_params():,} parameters; backend {keras.backend.backend()} on {hardware()}")

    log = ScalarLog(run)
    drawing = curves.can_draw()
    if not drawing:
        report(f"matplotlib is not installed here: no curves.png; draw it later with python -m train.curves {run}")
    stale = _epochs_without_improvement(progress)
    session_start, last_seconds = time.perf_counter(), None  # this session's clock, not the run's
    for epoch in range(progress["epoch"], cfg.epochs):
        session_seconds = time.perf_counter() - session_start
        if stale >= cfg.patience:
            report(f"early stop: no better validation loss for {cfg.patience} epochs")
            break
        if cfg.time_budget and last_seconds and session_seconds + last_seconds > cfg.time_budget:
            report(f"time budget of {cfg.time_budget:.0f} s reached: stopping after epoch {epoch} "
                   "(--resume continues)")
            break
        t0 = time.perf_counter()
        reseed_dropout(model, cfg.seed, epoch)  # dropout masks depend on (seed, epoch) alone
        x, y, w = epoch_batches(train_ids, cfg, epoch, train_books, vocab.token_base)
        if cfg.carry_state:
            model.reset_carry()  # every stream starts the epoch from zero state
        hist = fitted.fit(x, y, sample_weight=w, batch_size=cfg.batch_size, epochs=epoch + 1,
                          initial_epoch=epoch, shuffle=False, verbose=_verbosity())
        train_loss = float(hist.history["student_nats" if cfg.teacher else "loss"][-1])
        start = network.book_start_states(cfg, model, n_books, vocab.token_base)
        val, n_val = validate(cfg, stepper, val_ids, start)
        seconds = last_seconds = time.perf_counter() - t0
        row = {"train_nats": train_loss, "val_nats": val, "val_bits": val / LN2}
        if cfg.teacher:  # the loss it minimised: text and teacher mixed (train.distill)
            row["train_distillation"] = float(hist.history["loss"][-1])
        if n_books:  # the same tails read with no novel given: the model must still write without one
            row["val_nats_no_book"] = validate(cfg, stepper, val_ids, start, use_books=False)[0]
        row |= {
               "lr": float(np.asarray(optimizer.learning_rate)), "seconds": seconds}
        progress["history"].append({"epoch": epoch + 1, **row})
        progress["seconds"] += seconds
        progress["epoch"] = epoch + 1
        better = progress["best_val"] is None or val < progress["best_val"]
        if better:
            progress["best_val"], progress["best_epoch"] = val, epoch + 1
            model.save_weights(run / "best.weights.h5")
        stale = 0 if better else stale + 1
        save_checkpoint(run, model, optimizer, progress)
        log.write(epoch + 1, row)
        if drawing:
            curves.draw(run)
        no_book = f"; no novel given {row['val_nats_no_book']:.4f}" if n_books else ""
        report(f"epoch {epoch + 1}/{cfg.epochs}: train {train_loss:.4f} nats/char, validation {val:.4f} nats/char "
               f"({val / LN2:.4f} bits/char, {n_val:,} chars, state carried{no_book}){' *' if better else ''}, "
               f"{seconds:.0f} s")

    result = {
        "config": asdict(cfg), "vocab_size": len(vocab), "parameters": model.count_params(),
        "epochs_run": progress["epoch"], "best_epoch": progress["best_epoch"],
        "best_val_nats_per_char": progress["best_val"], "val_nats_at_start": progress.get("val_at_start"),
        "best_val_bits_per_char": None if progress["best_val"] is None else progress["best_val"] / LN2,
        "train_seconds": round(progress["seconds"], 1), "hardware": hardware(),
        "backend": keras.backend.backend(), "keras": keras.__version__, "numpy": np.__version__,
        "history": progress["history"],
    }
    (run / "report.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return result


def reseed_dropout(model, seed: int, epoch: int) -> None:
    """Set every dropout layer's random state, so a resumed epoch draws the same masks.
    The state is two numbers: (seed, epoch) folded into the first, the layer the second,
    so no two (epoch, layer) pairs share masks."""
    for i, layer in enumerate(model.layers):
        gen = getattr(layer, "seed_generator", None)
        if gen is not None:
            gen.state.assign(np.array([(seed * 100_003 + epoch) % 2**31, i], dtype=str(gen.state.dtype)))


def _epochs_without_improvement(progress: dict) -> int:
    if progress["best_epoch"] is None:
        return 0
    return progress["epoch"] - progress["best_epoch"]


def _verbosity() -> int:
    """A live progress bar on a terminal; one line per epoch in logs and CI."""
    return 1 if sys.stdout.isatty() else 2
