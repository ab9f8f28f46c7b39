"""Generate text with a OneStep SavedModel.

    python -m model "乔峰带阿朱" [--length 300] [--temperature 0.8] [--model DIR] [--seed 1]

Prints the prompt followed by its continuation. Without --model it uses the shipped
default model.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model", description=__doc__.split("\n")[0])
    ap.add_argument("prompt", help="the opening to continue")
    ap.add_argument("--length", type=int, default=300, help="characters to generate (default 300)")
    ap.add_argument("--temperature", type=float, default=0.8, help="> 0; lower is safer, higher is wilder")
    ap.add_argument("--top-k", type=int, default=0, help="sample from the k likeliest characters (0 = off)")
    ap.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1 = off)")
    ap.add_argument("--seed", type=int, default=None, help="random seed, for repeatable output")
    ap.add_argument("--model", help="SavedModel directory (default: the shipped model)")
    args = ap.parse_args(argv)
    from model import ModelError, check_sampling, load  # noqa: PLC0415

    try:
        check_sampling(args.temperature, args.top_k, args.top_p)
        if not 0 <= args.length <= 100_000:
            raise ValueError("--length must be between 0 and 100000")
        m = load(args.model)
        texts, _ = m.generate([args.prompt], length=args.length, temperature=args.temperature,
                              top_k=args.top_k, top_p=args.top_p, seed=args.seed)
    except (ModelError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(args.prompt + texts[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
