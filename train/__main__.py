"""Train a character model on novels, then export it as a OneStep SavedModel.

    python -m train --corpus ../shared/corpus/jinyong --out runs/jy
    python -m train --out runs/jy --resume            # continue an interrupted run
    python -m train --init-from model/default --corpus my_novels/ --out runs/mine   # fine-tune
    python -m train --teacher runs/big --distill 0.5 ...   # also learn from a bigger run's predictions
    KERAS_BACKEND=jax python -m train ...             # on the GPU machine (no TensorFlow there)

Every TrainConfig field is a flag (--units 1024, --layers 2, --cell lstm, ...). With
--init-from the architecture is the parent's and the learning rate and epochs default
to fine-tuning values (train.parent.FINE_TUNE) unless given.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import inspect
import re
import sys
from pathlib import Path

from train.config import TrainConfig


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python -m train", description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", nargs="+", help=".txt files or folders of them")
    ap.add_argument("--out", type=Path, required=True, help="run directory (checkpoints, logs, the SavedModel)")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    ap.add_argument("--no-export", action="store_true", help="skip the SavedModel export at the end")
    defaults, explained = TrainConfig(), field_comments()
    for f in dataclasses.fields(TrainConfig):
        flag, default = "--" + f.name.replace("_", "-"), getattr(defaults, f.name)
        text = f"{explained.get(f.name, '')} (default {default})".strip()
        if isinstance(default, bool):  # --carry-state / --no-carry-state
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            ap.add_argument(flag, type=type(default), default=None, help=text)
    return ap.parse_args(argv)


def field_comments() -> dict[str, str]:
    """Each TrainConfig field's one-line comment in train/config.py: the flags' help is the config's own."""
    source = inspect.getsource(TrainConfig)
    lines = re.finditer(r"^\s+(\w+): [^=]+=[^#\n]+#\s*(.+)$", source, re.M)
    return {m.group(1): m.group(2).replace("%", "%%") for m in lines}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if getattr(args, f.name) is not None}
    if not args.resume and not args.corpus:
        print("error: --corpus is required (or --resume to continue a run)", file=sys.stderr)
        return 2
    if args.resume and set(given) - {"epochs", "time_budget"}:
        print("error: with --resume only --epochs and --time-budget may change; the run's config.json "
              "holds the rest",
              file=sys.stderr)
        return 2
    from train.corpus import CorpusError  # noqa: PLC0415
    from train.loop import TrainingError, train  # noqa: PLC0415  (imports Keras)
    from train.parent import ParentError, fine_tune_config, load_parent  # noqa: PLC0415

    try:
        parent = load_parent(given["init_from"]) if given.get("init_from") and not args.resume else None
        cfg = None if args.resume else fine_tune_config(given, parent) if parent else TrainConfig(**given)
        result = train(args.out, args.corpus, cfg, resume=args.resume, epochs=given.get("epochs"),
                       time_budget=given.get("time_budget"), parent=parent)
    except (CorpusError, TrainingError, ParentError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"best validation {result['best_val_nats_per_char']:.4f} nats/char at epoch {result['best_epoch']}; "
          f"report {args.out / 'report.json'}")
    if args.no_export:
        return 0
    if importlib.util.find_spec("tensorflow") is None:
        print("TensorFlow is not installed here: run python -m train.export on a machine that has it")
        return 0
    from train.export import export_run  # noqa: PLC0415

    export_run(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
