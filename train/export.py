"""Export a training run to the OneStep SavedModel (needs TensorFlow).

    python -m train.export RUN_DIR [--out DIR] [--evaluate] [--book-strength 2] [--storage float16|int8]
    python -m train.export --measure MODEL_DIR --corpus NOVELS... [--holdout 0.05]

Reads RUN_DIR/weights.npz when present (float16 weights brought back from the GPU
machine, see `python -m train.pack`), else the best Keras weights of the run. Writes
RUN_DIR/saved_model/ with model.json, the model card. --evaluate scores every file's
held-out tail with the exported artifact itself and puts the figures in the card,
with how often its stories leave their novel, format defects and repetition (loops at
three temperatures, beside the novels' own); --measure does the same for a model
directory (the novels it was trained on given again), to refresh its card's figures.
For a world "input" model, --book-strength multiplies every novel's vector in the
artifact (guidance: a story leans harder into its novel; "no novel" is left as trained).
--storage int8 keeps the matrices in 8 bits with a scale per channel (half of float16's size;
the shipped model is stored so).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

from model.card import Architecture, ModelCard, write_card
from model.quant import dequantize, quantize
from model.weights import RecurrentLayer, Weights
from train.config import TrainConfig
from train.vocab import Vocabulary

# Matrices by name and the axis their 8-bit scale reduces over (one scale per output channel;
# per character for the embedding). Everything else (biases, novel states) stays float16.
QUANTIZED_AXIS = {"embedding": 1, "dense_kernel": 0, "kernel": 0, "recurrent": 0}
SCALE = "__scale"  # suffix of a quantized matrix's scales in weights.npz


def pack(weights: Weights, path: Path, bits: int = 16) -> None:
    """Save `network.export_weights` output as one flat .npz: float16, or int8 matrices (bits=8)
    with per-channel float32 scales (model.quant)."""
    flat = {"embedding": weights.embedding, "dense_kernel": weights.dense_kernel,
            "dense_bias": weights.dense_bias, "book_states": weights.book_states}
    if weights.book_gates is not None:  # world "input"; float16 like the other vectors
        flat["book_gates"] = weights.book_gates
    for i, layer in enumerate(weights.rnn):
        for k, v in layer.arrays().items():
            flat[f"rnn_{i}_{k}"] = v
    out = {}
    for name, value in flat.items():
        axis = _quantized_axis(name)
        if bits == 8 and axis is not None:
            out[name], out[name + SCALE] = quantize(value, axis)
        else:
            out[name] = np.asarray(value, np.float16)
    np.savez(path, **out)


def _quantized_axis(name: str) -> int | None:
    """"rnn_1_kernel" -> QUANTIZED_AXIS["kernel"]; None for what stays float16."""
    return QUANTIZED_AXIS.get(name.split("_")[-1] if name.startswith("rnn_") else name)


def unpack(path: Path) -> Weights:
    """weights.npz (float16 or 8-bit) -> weights by role (float16 or float32 arrays)."""
    z = np.load(path)

    def get(name):
        if name + SCALE not in z.files:
            return z[name]
        return dequantize(z[name], z[name + SCALE], _quantized_axis(name))

    n = len({k.split("_")[1] for k in z.files if k.startswith("rnn_")})
    rnn = [RecurrentLayer(*(get(f"rnn_{i}_{k}") for k in ("kernel", "recurrent", "bias"))) for i in range(n)]
    weights = Weights(embedding=get("embedding"), rnn=rnn, dense_kernel=get("dense_kernel"), dense_bias=z["dense_bias"],
                      book_gates=z["book_gates"] if "book_gates" in z.files else None)
    no_novels = np.zeros((1, weights.recurrent_states, weights.units), np.float16)  # runs from before novels
    return weights.replace(book_states=z["book_states"] if "book_states" in z.files else no_novels)


def run_books(run: Path) -> dict:
    """books.json of a run ({"books": [], "names": {}} for runs made before novels were tracked)."""
    path = run / "books.json"
    return json.loads(path.read_text()) if path.exists() else {"books": [], "names": {}}


def run_weights(run: Path, cfg: TrainConfig, vocab_size: int) -> Weights:
    """The run's best weights by role, from weights.npz or the Keras checkpoint."""
    if (run / "weights.npz").exists():
        return unpack(run / "weights.npz")
    source = run / "best.weights.h5"
    if not source.exists():
        source = run / "checkpoint" / "weights.weights.h5"
    if not source.exists():
        raise FileNotFoundError(f"{run}: no weights (best.weights.h5, checkpoint/ or weights.npz)")
    from train import network  # noqa: PLC0415  (Keras only when the weights are Keras's)

    n_books = len(run_books(run)["books"]) if cfg.world != "none" else 0
    model, _ = network.build(cfg, vocab_size, n_books)
    model.load_weights(source)
    return network.export_weights(cfg, model, n_books, Vocabulary.load(run / "vocab.json").token_base)


def make_card(run: Path, cfg: TrainConfig, vocab: Vocabulary, weights: Weights,
              book_strength: float | None = None) -> ModelCard:
    report = json.loads((run / "report.json").read_text()) if (run / "report.json").exists() else {}
    corpus = json.loads((run / "corpus.json").read_text())["files"]
    size = lambda a: int(np.prod(np.shape(a)))  # noqa: E731
    params = size(weights.embedding) + size(weights.dense_kernel) + size(weights.dense_bias)
    if cfg.world == "state":  # learned parameters; a token world's states are derived, not learned
        params += size(weights.book_states)
    if cfg.world == "input":  # the learned vectors [K+1, E]; the table's rows are derived from them
        params += weights.book_states.shape[0] * cfg.embedding_dim
    params += sum(size(a) for layer in weights.rnn for a in layer.arrays().values())
    best = report.get("best_val_nats_per_char")
    import tensorflow as tf  # noqa: PLC0415

    return ModelCard(
        name=run.name,
        exported=time.strftime("%Y-%m-%d %H:%M:%S %z"),
        world=cfg.world,
        parent=json.loads((run / "parent.json").read_text()) if (run / "parent.json").exists() else None,
        book_strength=book_strength if cfg.world == "input" else None,
        books=books_for_card(run, cfg),
        architecture=Architecture(cell=cfg.cell, layers=cfg.layers, units=cfg.units, embedding_dim=cfg.embedding_dim,
                                  dropout=cfg.dropout, vocab_size=len(vocab), parameters=params),
        training={"epochs_run": report.get("epochs_run"), "best_epoch": report.get("best_epoch"),
                  "seq_len": cfg.seq_len, "burn_in": cfg.burn_in, "carry_state": cfg.carry_state,
                  "book_drop": cfg.book_drop, "quotes": cfg.quotes,
                  "teacher": cfg.teacher or None, "distill": cfg.distill if cfg.teacher else None,
                  "batch_size": cfg.batch_size,
                  "learning_rate": cfg.learning_rate, "min_count": cfg.min_count, "holdout": cfg.holdout,
                  "seed": cfg.seed, "seconds": report.get("train_seconds"), "hardware": report.get("hardware"),
                  "backend": report.get("backend"), "keras": report.get("keras")},
        validation={"heldout": f"last {cfg.holdout:.0%} of every file",
                    "nats_per_char_training": best,
                    "bits_per_char_training": None if best is None else best / math.log(2)},
        corpus=corpus,
        libraries={"tensorflow": tf.__version__, "numpy": np.__version__, "python": platform.python_version()},
    )


def books_for_card(run: Path, cfg: TrainConfig) -> list[dict]:
    """The card's novels: id, name, and the names it makes frequent ({name: [count, share]}), for
    picking a novel from a prompt. Every run lists its novels; only a world model can write in one."""
    books = run_books(run)
    return [{"id": b["id"], "name": b["name"], "file": b["file"], "names": books["names"].get(b["name"], {})}
            for b in books["books"]]


def repetition_figures(model_dir: Path, novels) -> dict:
    """Loops and distinct-4 at each temperature, beside windows of the novels (train.repetition)."""
    from model import load  # noqa: PLC0415
    from train.repetition import repetition  # noqa: PLC0415

    result = repetition(load(model_dir), [n.text for n in novels])
    keep = ("loops_per_1000", "with_loop", "distinct4")
    return {"repetition": {**{f"temperature {t}": {k: f[k] for k in keep} for t, f in result["temperatures"].items()},
                           "novels": {k: result["novels"][k] for k in keep} if result["novels"] else None,
                           "measure": f"{result['prompts']} prompts × {result['seeds']} seeds × {result['length']} "
                                      f"chars, book auto, seed {result['seed']}, loop ban on; the novels: "
                                      f"{result['novels']['texts'] if result['novels'] else 0} windows "
                                      "(python -m train.evaluate --repetition)"}}


def measure(model_dir: Path, novels, holdout: float) -> None:
    """Write the measured figures of the model in model_dir into its card (see the module docstring)."""
    from model.artifact import check_model_dir  # noqa: PLC0415
    from train.evaluate import heldout_figures  # noqa: PLC0415
    from train.flavour import write_flavour  # noqa: PLC0415

    card = check_model_dir(model_dir)
    card.validation.update(heldout_figures(model_dir, novels, holdout))
    if card.books:
        card.validation.update(world_figures(model_dir))
    card.validation.update(repetition_figures(model_dir, novels))
    write_card(card, model_dir)
    write_flavour(model_dir, novels, holdout)


def world_figures(model_dir: Path) -> dict:
    """How often the exported model's stories wander into other novels (train.worlds), for the card."""
    from model import load  # noqa: PLC0415
    from train.worlds import format_check, world_consistency  # noqa: PLC0415

    model = load(model_dir)
    auto = world_consistency(model)
    marks = format_check(model)
    return {"world_foreign_share": round(auto["foreign_share"], 4),
            "world_names_counted": auto["own"] + auto["foreign"],
            "world_measure": f"{auto['prompts']} prompts × {auto['length']} chars at temperature "
                             f"{auto['temperature']}, seed {auto['seed']}, book auto "
                             "(python -m train.evaluate --worlds)",
            "format_defects": {k: marks[k] for k in ("samples", "missing_glyph", "ocr_slips", "corner_quotes",
                                                     "wrapped_runs")}}


# World "input": the novels' vectors are multiplied by this in the artifact. Measured (README) on
# fi1024: 1 → 15.0 % of principal names from other novels, 1.5 → 5.7 %, 2 → 2.9 %, at +0.014
# (天龙八部) and +0.023 (all 14 tails) nats/char; d1024 needed 2.25 for 2.9 % (2: 4.2 %); the shipped
# m1024 has 2.3 % at 2.25 (2: 3.4 %).
# Each model has its own best value: --book-strength sets it.
BOOK_STRENGTH = 2.0


def strengthen_books(weights: Weights, cfg: TrainConfig, strength: float) -> Weights:
    """World "input": each novel's share of layer 0's gates (not row 0, "no novel") times
    `strength`; other worlds unchanged."""
    if cfg.world != "input" or strength == 1.0:
        return weights
    gates = np.array(weights.book_gates, np.float32)  # [K+1, G*units]
    gates[1:] *= strength
    return weights.replace(book_gates=gates)


def export_run(run: Path, out: Path | None = None, evaluate: bool = False, report=print,
               book_strength: float = BOOK_STRENGTH, storage: str = "float16") -> Path:
    from model.onestep import export  # noqa: PLC0415  (TensorFlow)

    run = Path(run)
    cfg = TrainConfig.load(run / "config.json")
    vocab = Vocabulary.load(run / "vocab.json")
    weights = strengthen_books(run_weights(run, cfg, len(vocab)), cfg, book_strength)
    card = make_card(run, cfg, vocab, weights, book_strength)
    card.architecture.storage = storage
    out = Path(out) if out else run / "saved_model"
    export(weights, vocab.chars, card, out)
    if evaluate:
        from train.corpus import read_corpus  # noqa: PLC0415
        from train.loop import corpus_paths  # noqa: PLC0415

        measure(out, read_corpus(corpus_paths(run), report=lambda s: None), cfg.holdout)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    report(f"exported {out} ({size / 1e6:.1f} MB)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.export", description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, nargs="?", help="run directory written by python -m train")
    ap.add_argument("--measure", type=Path, metavar="MODEL_DIR",
                    help="measure this model directory and write the figures into its card (with --corpus)")
    ap.add_argument("--corpus", nargs="+", default=[], help="with --measure: the novels it was trained on")
    ap.add_argument("--holdout", type=float, default=0.05, help="with --measure: the held-out share of each")
    ap.add_argument("--out", type=Path, help="where to write the SavedModel (default RUN/saved_model)")
    ap.add_argument("--evaluate", action="store_true", help="score the held-out tails with the exported model")
    ap.add_argument("--storage", choices=("float16", "int8"), default="float16",
                    help="how the matrices are stored: float16, or int8 with a scale per channel (half the size)")
    ap.add_argument("--book-strength", type=float, default=BOOK_STRENGTH,
                    help=f"world input: multiply each novel's vector by this (default {BOOK_STRENGTH}; 1 = as trained)")
    args = ap.parse_args(argv)
    if args.measure:
        return measure_main(args.measure, args.corpus, args.holdout)
    if args.run is None:
        ap.error("give a run directory (or --measure MODEL_DIR)")
    if not args.book_strength > 0:
        print("error: --book-strength must be > 0", file=sys.stderr)
        return 2
    if not (args.run / "config.json").exists():
        print(f"error: {args.run}: not a run directory (no config.json)", file=sys.stderr)
        return 2
    try:
        export_run(args.run, args.out, args.evaluate, book_strength=args.book_strength, storage=args.storage)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def measure_main(model_dir: Path, corpus: list[str], holdout: float) -> int:
    from model.artifact import ModelError  # noqa: PLC0415
    from train.corpus import CorpusError, read_corpus  # noqa: PLC0415

    if not corpus:
        print("error: --measure needs --corpus (the novels the model was trained on)", file=sys.stderr)
        return 2
    try:
        measure(model_dir, read_corpus(corpus, report=lambda s: None), holdout)
    except (CorpusError, ModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{model_dir}/model.json: figures measured and written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
