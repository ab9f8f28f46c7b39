"""Pack a run's best weights into RUN/weights.npz, float16 or 8-bit (no TensorFlow needed).

    python -m train.pack RUN_DIR [--bits 8]

For the GPU machine, which has no TensorFlow: pack there, bring weights.npz (about
half the float32 size; a quarter with --bits 8) back with the run's json files, and export here with
`python -m train.export RUN_DIR`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.pack", description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="run directory written by python -m train")
    ap.add_argument("--bits", type=int, choices=(16, 8), default=16,
                    help="16: float16; 8: int8 matrices with per-channel scales (model.quant)")
    args = ap.parse_args(argv)
    if not (args.run / "config.json").exists():
        print(f"error: {args.run}: not a run directory (no config.json)", file=sys.stderr)
        return 2
    from train.config import TrainConfig  # noqa: PLC0415
    from train.export import pack, run_weights  # noqa: PLC0415
    from train.vocab import Vocabulary  # noqa: PLC0415

    cfg = TrainConfig.load(args.run / "config.json")
    vocab = Vocabulary.load(args.run / "vocab.json")
    pack(run_weights(args.run, cfg, len(vocab)), args.run / "weights.npz", bits=args.bits)
    print(f"wrote {args.run / 'weights.npz'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
