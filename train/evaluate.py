"""Cross-entropy of a model on any text, in nats/char and bits/char, and perplexity.

    python -m train.evaluate --model DIR FILE_OR_DIR... [--tail 0.05] [--book auto|none|NAME] [--exact] [--json]
    python -m train.evaluate --worlds [--model DIR] [--book auto|none] [--json]
    python -m train.evaluate --format [--model DIR] [--json]
    python -m train.evaluate --repetition [--model DIR] [--book auto|none|NAME] [--no-loop-ban] [--json] [NOVELS...]

Files get the same reading and cleaning as training. Each file is one stream: it is
scored in chunks with the state carried from one chunk to the next (no reset every
100 characters), all files side by side in one batch; --window N instead restarts
from the zero state every N characters, as training windows do. --tail F scores only the last
F of every file (0.05 = the part training held out). Each text starts in its novel
as a story would: --book auto (default) picks it from the names in the text's first
2,000 characters, --book none starts with no novel, --book NAME in that one. With
--json, exactly one JSON object is printed on stdout: nats_per_char, bits_per_char,
perplexity, chars (totals) and files (per file, with the novel it started in).
It scores with the runtime users get (int8 unless RUNTIME=float32); --exact with the
SavedModel's float32 graph. --worlds measures instead how often stories wander into other
novels, --format what a printed book would not have in them (both: train.worlds), --repetition
how often continuations stutter at three temperatures, beside windows of the NOVELS given
(train.repetition); --no-loop-ban samples without the ban on loops, to compare.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from train.corpus import CorpusError, read_corpus, split_tail
from train.repetition import repetition, repetition_lines
from train.worlds import format_check, world_consistency

LN2 = math.log(2.0)


AUTO_SAMPLE = 2000  # characters of a text that --book auto reads to pick its novel


def start_states(model, texts: list[str], book: str | None) -> tuple[np.ndarray, list[str | None]]:
    """Each text's starting state and novel: "auto" picks it from the text's opening names."""
    return model.start_states([t[:AUTO_SAMPLE] for t in texts], book)


def score_texts(model, texts: list[str], chunk: int = 1000, states=None) -> tuple[np.ndarray, np.ndarray]:
    """Summed nll (nats) and characters per text, the state carried across chunks from `states`
    [S, len(texts), H] (default: no novel)."""
    nll = np.zeros(len(texts))
    chars = np.zeros(len(texts), dtype=np.int64)
    states = model.initial_state(len(texts)) if states is None else states
    for start in range(0, max(map(len, texts), default=0), chunk):
        pieces = [t[start:start + chunk] for t in texts]
        n, c, states = model.score(pieces, states)
        nll += n
        chars += c
    return nll, chars


def score_windows(model, texts: list[str], window: int, batch: int = 256, states=None) -> tuple[np.ndarray, np.ndarray]:
    """Like score_texts, but every `window` characters start again from the text's starting state."""
    begin = model.initial_state(len(texts)) if states is None else states  # [S, len(texts), H]
    rows = [(i, t[s:s + window]) for i, t in enumerate(texts) for s in range(0, len(t), window)]
    nll = np.zeros(len(texts))
    chars = np.zeros(len(texts), dtype=np.int64)
    for b in range(0, len(rows), batch):
        part = rows[b:b + batch]
        n, c, _ = model.score([t for _, t in part], begin[:, [i for i, _ in part]])
        np.add.at(nll, [i for i, _ in part], n)
        np.add.at(chars, [i for i, _ in part], c)
    return nll, chars


def figures(nll: float, chars: int) -> dict:
    nats = float(nll / chars) if chars else float("nan")
    return {"nats_per_char": nats, "bits_per_char": nats / LN2, "perplexity": math.exp(nats), "chars": int(chars)}


def evaluate(model, named_texts: list[tuple[str, str]], chunk: int = 1000, window: int = 0,
             book: str | None = "auto") -> dict:
    """Totals plus per-file figures for [(name, text)]; window > 0 resets the state every window chars."""
    texts = [t for _, t in named_texts]
    states, novels = start_states(model, texts, book)
    if window:
        nll, chars = score_windows(model, texts, window, states=states)
    else:
        nll, chars = score_texts(model, texts, chunk, states=states)
    result = figures(nll.sum(), chars.sum())
    result["book"] = book
    result["files"] = {name: {**figures(n, c), "book": novel}
                       for (name, _), n, c, novel in zip(named_texts, nll, chars, novels)}
    return result


def heldout_figures(model_dir: Path, novels, holdout: float) -> dict:
    """Score every novel's held-out tail with the exported model (for the card)."""
    from model import load  # noqa: PLC0415

    model = load(model_dir)
    tails = [(n.file, n.split(holdout)[1]) for n in novels]
    result = evaluate(model, tails)
    no_book = evaluate(model, tails, book=None)
    return {"artifact_nats_per_char": result["nats_per_char"], "artifact_bits_per_char": result["bits_per_char"],
            "artifact_chars": result["chars"],
            "artifact_nats_per_char_no_book": no_book["nats_per_char"],
            "artifact_files": {k: round(v["nats_per_char"], 4) for k, v in result["files"].items()},
            "artifact_files_no_book": {k: round(v["nats_per_char"], 4) for k, v in no_book["files"].items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.evaluate", description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="*", help="novel files or folders (.txt, .txt.xz, .txt.gz, .zip)")
    ap.add_argument("--book", default="auto",
                    help="the novel each text starts in: auto (from its names), none, or a novel's name")
    ap.add_argument("--worlds", action="store_true",
                    help="measure how often continuations name characters of other novels (no files needed)")
    ap.add_argument("--format", action="store_true",
                    help="count □, 「」 and hard-wrapped lines in 100 continuations (no files needed)")
    ap.add_argument("--repetition", action="store_true",
                    help="measure stutter loops and distinct-4 at three temperatures (files given: the reference)")
    ap.add_argument("--no-loop-ban", action="store_true", help="sample without the ban on loops (--repetition)")
    ap.add_argument("--model", help="SavedModel directory (default: the shipped model)")
    ap.add_argument("--tail", type=float, default=None, help="score only this last fraction of each file")
    ap.add_argument("--chunk", type=int, default=1000, help="characters per model call")
    ap.add_argument("--window", type=int, default=0,
                    help="start from the zero state every N characters (fresh windows, as in training) "
                         "instead of carrying the state through the file")
    ap.add_argument("--exact", action="store_true",
                    help="score with the SavedModel's float32 graph instead of the int8 runtime users get")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = ap.parse_args(argv)
    from model import ModelError, load  # noqa: PLC0415

    log = (lambda s: print(s, file=sys.stderr)) if args.json else print
    try:
        if args.tail is not None and not 0 < args.tail <= 1:
            raise ValueError("--tail must be in (0, 1]")
        if args.chunk < 1 or args.window < 0:
            raise ValueError("--chunk must be at least 1 and --window 0 or more")
        model = load(args.model, "float32" if args.exact else None)
        book = model.resolve_book(args.book) if args.book != "auto" else "auto"
        if args.worlds:
            return show(world_consistency(model, book), args.json, world_lines)
        if args.format:
            return show(format_check(model), args.json, format_lines)
        if args.repetition:
            novels = [n.text for n in read_corpus(args.paths, report=log)] if args.paths else []
            return show(repetition(model, novels, book, ban_loops=not args.no_loop_ban), args.json, repetition_lines)
        if not args.paths:
            raise ValueError("give the files to score (or --worlds)")
        novels = read_corpus(args.paths, report=log)
    except (CorpusError, ModelError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    named = [(str(n.path), split_tail(n.text, args.tail)[1] if args.tail else n.text) for n in novels]
    return show(evaluate(model, named, args.chunk, args.window, book), args.json, score_lines)


def show(result: dict, as_json: bool, lines) -> int:
    """Print `result` as one JSON object (--json), else as the lines `lines(result)` gives; exit status 0."""
    print(json.dumps(result, ensure_ascii=False) if as_json else "\n".join(lines(result)))
    return 0


def score_lines(result: dict) -> list[str]:
    return [*(f"{name} [{f['book'] or 'no novel'}]: {f['nats_per_char']:.4f} nats/char, "
              f"{f['bits_per_char']:.4f} bits/char, perplexity {f['perplexity']:.1f}, {f['chars']:,} chars"
              for name, f in result["files"].items()),
            f"total: {result['nats_per_char']:.4f} nats/char, {result['bits_per_char']:.4f} bits/char, "
            f"perplexity {result['perplexity']:.1f}, {result['chars']:,} chars"]


def format_lines(result: dict) -> list[str]:
    return [*(text + "\n" for text in result["flagged"]),
            f"{result['samples']} continuations × {result['length']} chars at temperature {result['temperature']}: "
            f"{result['missing_glyph']} missing-glyph marks, {result.get('ocr_slips', 0)} OCR slips (囗 for 口), "
            f"{result['corner_quotes']} corner quotes, "
            f"{result['wrapped_runs']} hard-wrapped runs"]


def world_lines(result: dict) -> list[str]:
    counted = lambda v: v["own"] + v["foreign"]  # noqa: E731
    return [*(f"{name}: {v['own']} own names, {v['foreign']} from other novels"
              + (f" ({v['foreign'] / counted(v):.0%})" if counted(v) else "") for name, v in result["books"].items()),
            f"names from other novels: {result['foreign_share']:.1%} of {counted(result)} "
            f"({result['prompts']} prompts × {result['length']} chars at temperature {result['temperature']}, "
            f"book {result['book'] or 'none'}, seed {result['seed']})"]

if __name__ == "__main__":
    sys.exit(main())
