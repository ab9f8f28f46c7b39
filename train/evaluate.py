"""Cross-entropy of a model on any text, in nats/char and bits/char, and perplexity.

    python -m train.evaluate --model DIR FILE_OR_DIR... [--tail 0.05] [--json]

Files get the same reading and cleaning as training. Each file is one stream: it is
scored in chunks with the state carried from one chunk to the next (no reset every
100 characters), all files side by side in one batch; --window N instead restarts
from the zero state every N characters, as training windows do. --tail F scores only the last
F of every file (0.05 = the part training held out). With --json, exactly one JSON
object is printed on stdout: nats_per_char, bits_per_char, perplexity, chars (totals)
and files (per file).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from train.corpus import CorpusError, read_corpus, split_tail

LN2 = math.log(2.0)


def score_texts(model, texts: list[str], chunk: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Summed nll (nats) and characters per text, the state carried across chunks."""
    nll = np.zeros(len(texts))
    chars = np.zeros(len(texts), dtype=np.int64)
    states = model.initial_state(len(texts))
    for start in range(0, max(map(len, texts), default=0), chunk):
        pieces = [t[start:start + chunk] for t in texts]
        n, c, states = model.score(pieces, states)
        nll += n
        chars += c
    return nll, chars


def score_windows(model, texts: list[str], window: int, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Like score_texts, but every `window` characters start again from the zero state."""
    rows = [(i, t[s:s + window]) for i, t in enumerate(texts) for s in range(0, len(t), window)]
    nll = np.zeros(len(texts))
    chars = np.zeros(len(texts), dtype=np.int64)
    for b in range(0, len(rows), batch):
        part = rows[b:b + batch]
        n, c, _ = model.score([t for _, t in part])
        np.add.at(nll, [i for i, _ in part], n)
        np.add.at(chars, [i for i, _ in part], c)
    return nll, chars


def figures(nll: float, chars: int) -> dict:
    nats = float(nll / chars) if chars else float("nan")
    return {"nats_per_char": nats, "bits_per_char": nats / LN2, "perplexity": math.exp(nats), "chars": int(chars)}


def evaluate(model, named_texts: list[tuple[str, str]], chunk: int = 1000, window: int = 0) -> dict:
    """Totals plus per-file figures for [(name, text)]; window > 0 resets the state every window chars."""
    texts = [t for _, t in named_texts]
    nll, chars = score_windows(model, texts, window) if window else score_texts(model, texts, chunk)
    result = figures(nll.sum(), chars.sum())
    result["files"] = {name: figures(n, c) for (name, _), n, c in zip(named_texts, nll, chars)}
    return result


def heldout_figures(model_dir: Path, run: Path, cfg) -> dict:
    """Score every training file's held-out tail with the exported model (for the card)."""
    from model import load  # noqa: PLC0415

    paths = json.loads((run / "corpus.json").read_text())["paths"]
    novels = read_corpus(paths, report=lambda s: None)
    result = evaluate(load(model_dir), [(n.file, n.split(cfg.holdout)[1]) for n in novels])
    return {"artifact_nats_per_char": result["nats_per_char"], "artifact_bits_per_char": result["bits_per_char"],
            "artifact_chars": result["chars"],
            "artifact_files": {k: round(v["nats_per_char"], 4) for k, v in result["files"].items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.evaluate", description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="+", help=".txt files or folders")
    ap.add_argument("--model", help="SavedModel directory (default: the shipped model)")
    ap.add_argument("--tail", type=float, default=None, help="score only this last fraction of each file")
    ap.add_argument("--chunk", type=int, default=1000, help="characters per model call")
    ap.add_argument("--window", type=int, default=0,
                    help="start from the zero state every N characters (fresh windows, as in training) "
                         "instead of carrying the state through the file")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = ap.parse_args(argv)
    from model import ModelError, load  # noqa: PLC0415

    log = (lambda s: print(s, file=sys.stderr)) if args.json else print
    try:
        if args.tail is not None and not 0 < args.tail <= 1:
            raise ValueError("--tail must be in (0, 1]")
        if args.chunk < 1 or args.window < 0:
            raise ValueError("--chunk must be at least 1 and --window 0 or more")
        model = load(args.model)
        novels = read_corpus(args.paths, report=log)
    except (CorpusError, ModelError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    named = [(str(n.path), split_tail(n.text, args.tail)[1] if args.tail else n.text) for n in novels]
    result = evaluate(model, named, args.chunk, args.window)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    for name, f in result["files"].items():
        print(f"{name}: {f['nats_per_char']:.4f} nats/char, {f['bits_per_char']:.4f} bits/char, "
              f"perplexity {f['perplexity']:.1f}, {f['chars']:,} chars")
    print(f"total: {result['nats_per_char']:.4f} nats/char, {result['bits_per_char']:.4f} bits/char, "
          f"perplexity {result['perplexity']:.1f}, {result['chars']:,} chars")
    return 0


if __name__ == "__main__":
    sys.exit(main())
