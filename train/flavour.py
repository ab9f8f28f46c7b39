"""The 金庸味 ruler of a model (model.flavour): its nats/char on the novels' own sentences.

    python -m train.flavour MODEL_DIR --corpus NOVELS... [--holdout 0.05] [--per-novel 400]

Sentences of each novel's held-out tail (lines the model did not train on, as a person's
lines are new to it), up to --per-novel of each, every one scored alone from the start
state with no novel; their nats/char by length band go into the card (model.json's
"flavour"), which the bot's /score reads. `python -m train.export --measure` does this too.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from model import repeats
from model.flavour import Flavour, rate_texts

PER_NOVEL = 400  # sentences measured per novel at most (spread over its tail)
SHORTEST = 3  # hanzi: sentences with fewer (a cry, “哼！”) say little
BATCH = 64  # rows per scoring call
SENTENCE = re.compile(r"[^。！？…\n]*[。！？…]+[”’」』]*")  # up to its end marks and the quotes closing with them
HANZI = re.compile(f"[{repeats.HANZI}]")


def sentences(text: str) -> list[str]:
    """`text`'s sentences, stripped, of SHORTEST hanzi or more."""
    found = (m.group().strip() for m in SENTENCE.finditer(text))
    return [s for s in found if len(HANZI.findall(s)) >= SHORTEST]


def ruler_lines(novels, holdout: float, per_novel: int = PER_NOVEL) -> list[str]:
    """Up to `per_novel` sentences of each novel's held-out tail, evenly spread over it."""
    lines = []
    for novel in novels:
        found = sentences(novel.split(holdout)[1])
        if len(found) > per_novel:
            found = [found[i] for i in np.linspace(0, len(found) - 1, per_novel).astype(int)]
        lines.extend(found)
    return lines


def measure_flavour(model, novels, holdout: float, per_novel: int = PER_NOVEL) -> Flavour:
    """The model's ruler from the novels' held-out sentences."""
    lines = ruler_lines(novels, holdout, per_novel)
    if not lines:
        raise ValueError("the novels' held-out tails have no sentences")
    nats, chars = [], []
    for i in range(0, len(lines), BATCH):
        n, c = rate_texts(model, lines[i:i + BATCH])
        nats.append(n), chars.append(c)
    return Flavour.measured(np.concatenate(nats), np.concatenate(chars),
                            f"{len(lines)} sentences of the held-out {holdout:g} tails of {len(novels)} novels, "
                            f"up to {per_novel} each, scored alone from the start state with no novel "
                            "(python -m train.flavour)")


def write_flavour(model_dir: Path, novels, holdout: float, per_novel: int = PER_NOVEL) -> Flavour:
    """Measure the model in `model_dir` and write its ruler into its card."""
    from model import load  # noqa: PLC0415  (TensorFlow)
    from model.artifact import check_model_dir  # noqa: PLC0415
    from model.card import write_card  # noqa: PLC0415

    card = check_model_dir(model_dir)
    ruler = measure_flavour(load(model_dir), novels, holdout, per_novel)
    card.flavour = ruler.to_json()
    write_card(card, model_dir)
    return ruler


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.flavour", description=__doc__.split("\n")[0])
    ap.add_argument("model_dir", type=Path, help="an exported model (its model.json gets the ruler)")
    ap.add_argument("--corpus", nargs="+", required=True, help="the novels it was trained on")
    ap.add_argument("--holdout", type=float, default=0.05, help="the held-out share of each novel")
    ap.add_argument("--per-novel", type=int, default=PER_NOVEL, help="sentences measured per novel at most")
    args = ap.parse_args(argv)
    from model.artifact import ModelError  # noqa: PLC0415
    from train.corpus import CorpusError, read_corpus  # noqa: PLC0415

    try:
        ruler = write_flavour(args.model_dir, read_corpus(args.corpus, report=lambda s: None), args.holdout,
                              args.per_novel)
    except (CorpusError, ModelError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for band, (row, n) in enumerate(zip(ruler.percentiles, ruler.lines)):
        print(f"{Flavour.band_name(band)}: {n} sentences, nats/char 10/50/90 % = "
              f"{row[10]:.3f} / {row[50]:.3f} / {row[90]:.3f}")
    print(f"{args.model_dir}/model.json: flavour written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
