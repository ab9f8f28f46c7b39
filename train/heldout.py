"""A run's held-out tails scored with the training code: no TensorFlow, no export needed.

    python -m train.heldout RUN [--chunk 1000] [--json]

Every file the run trained on has its last `holdout` (5 %) held out. This scores each whole
tail with the run's best weights in float32, the state carried through it, starting in the
right novel and again with no novel, at the strength the run was trained with: what
`python -m train.evaluate --tail 0.05 --exact` says of an exported artifact (`--book-strength 1`),
but on a machine without TensorFlow (the GPU machine) and for runs too big to ship.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from train import network
from train.config import TrainConfig
from train.loop import LN2, corpus_paths, load_corpus, score_tails
from train.vocab import Vocabulary


def heldout(run: Path, chunk: int = 1000, report=print) -> dict:
    """{"files": {file: {"nats_per_char", "nats_per_char_no_book", "chars"}}, "nats_per_char", ...}."""
    run = Path(run)
    weights = run / "best.weights.h5"
    if not weights.exists():
        raise FileNotFoundError(f"{run}: no best.weights.h5 (not a run, or no epoch finished yet)")
    cfg = dataclasses.replace(TrainConfig.load(run / "config.json"), val_max_chars=0, val_chunk=chunk)
    novels, _, val_texts = load_corpus(corpus_paths(run), cfg, report=lambda s: None)
    vocab = Vocabulary.load(run / "vocab.json")
    n_books = len(novels) if cfg.world != "none" else 0
    model, stepper = network.build(cfg, len(vocab), n_books)
    model.load_weights(weights)
    start = network.book_start_states(cfg, model, n_books, vocab.token_base)
    val_ids = [vocab.encode(t) for t in val_texts]
    report(f"{run}: {len(novels)} tails, {sum(map(len, val_ids)):,} characters")
    nll, chars = score_tails(cfg, stepper, val_ids, start)
    nll_none, _ = score_tails(cfg, stepper, val_ids, start, use_books=False) if n_books else (nll, chars)
    files = {n.file: {"nats_per_char": float(a / c), "nats_per_char_no_book": float(b / c), "chars": int(c)}
             for n, a, b, c in zip(novels, nll, nll_none, chars) if c}
    return {"run": str(run), "files": files, "chars": int(chars.sum()),
            "nats_per_char": float(nll.sum() / chars.sum()),
            "nats_per_char_no_book": float(nll_none.sum() / chars.sum())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.heldout", description=__doc__.split("\n")[0])
    ap.add_argument("run", help="a run directory of python -m train")
    ap.add_argument("--chunk", type=int, default=1000, help="characters per model call")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = ap.parse_args(argv)
    log = (lambda s: print(s, file=sys.stderr)) if args.json else print
    try:
        result = heldout(Path(args.run), args.chunk, report=log)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    for name, f in result["files"].items():
        print(f"{name}: {f['nats_per_char']:.4f} nats/char in its novel, {f['nats_per_char_no_book']:.4f} "
              f"with none, {f['chars']:,} chars")
    print(f"total: {result['nats_per_char']:.4f} nats/char ({result['nats_per_char'] / LN2:.4f} bits/char) in "
          f"the right novel, {result['nats_per_char_no_book']:.4f} with none, {result['chars']:,} chars")
    return 0


if __name__ == "__main__":
    sys.exit(main())
