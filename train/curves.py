"""A run's training and validation curves as a picture: RUN/curves.png beside history.csv.

    python -m train.curves RUN_DIR        # redraw it (the loop draws it after every epoch)
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import sys
from pathlib import Path

# Lines drawn from history.csv, with their legend; nats/char, lower is better.
CURVES = {"train_nats": "training (windows, dropout on)", "val_nats": "validation (held-out tails, state carried)",
          "val_nats_no_book": "validation, no novel given"}


def read_history(path: Path) -> dict[str, list[float]]:
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows if r.get(k)] for k in ["epoch", *CURVES] if rows and k in rows[0]}


def can_draw() -> bool:
    """Whether matplotlib is installed (the GPU machine has none: draw there later, from history.csv)."""
    return importlib.util.find_spec("matplotlib") is not None


def draw(run: Path) -> Path:
    """Write RUN/curves.png from RUN/history.csv; returns its path."""
    import matplotlib  # noqa: PLC0415  (only when drawing)

    matplotlib.use("Agg")  # files only: no display on servers and GPU machines
    import matplotlib.pyplot as plt  # noqa: PLC0415

    history = read_history(run / "history.csv")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for key, label in CURVES.items():
        if history.get(key):
            ax.plot(history["epoch"], history[key], marker="o", markersize=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy (nats/char)")
    ax.set_title(run.name)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = run / "curves.png"
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.curves", description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="run directory written by python -m train")
    args = ap.parse_args(argv)
    if not (args.run / "history.csv").exists():
        print(f"error: {args.run}: no history.csv (has the run finished an epoch?)", file=sys.stderr)
        return 2
    print(draw(args.run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
