"""Generate text with a OneStep SavedModel.

    python -m model "乔峰带阿朱" [--length 300] [--temperature 0.8] [--book auto|none|NAME] [--model DIR]
                              [--seed 1] [--exact]

Prints the prompt followed by its continuation. Without --model it uses the shipped
default model. --book auto (default) writes in the novel the prompt's names point to
and says which on stderr; --book none in no novel; --book with no value lists them.
--exact runs the SavedModel's float32 graph instead of the 8-bit runtime (as RUNTIME=float32).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model", description=__doc__.split("\n")[0])
    ap.add_argument("prompt", nargs="?", default="", help="the opening to continue")
    ap.add_argument("--length", type=int, default=300, help="characters to generate (default 300)")
    ap.add_argument("--temperature", type=float, default=0.8, help="> 0; lower is safer, higher is wilder")
    ap.add_argument("--top-k", type=int, default=0, help="sample from the k likeliest characters (0 = off)")
    ap.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1 = off)")
    ap.add_argument("--seed", type=int, default=None, help="random seed, for repeatable output")
    ap.add_argument("--model", help="SavedModel directory (default: the shipped model)")
    ap.add_argument("--exact", action="store_true", help="run the SavedModel's float32 graph (default: int8, faster)")
    ap.add_argument("--book", nargs="?", const="", default="auto",
                    help="the novel to write in: auto (from the prompt's names), none, or a name; "
                         "alone it lists the model's novels")
    args = ap.parse_args(argv)
    from model import ModelError, check_sampling, load  # noqa: PLC0415
    from model.artifact import MAX_LENGTH  # noqa: PLC0415

    try:
        check_sampling(args.temperature, args.top_k, args.top_p)
        if not 0 <= args.length <= MAX_LENGTH:
            raise ValueError(f"--length must be between 0 and {MAX_LENGTH}")
        m = load(args.model, "float32" if args.exact else None)
        if args.book == "":
            print("\n".join(m.books.names) or "this model has no novels")
            return 0
        if not args.prompt:
            raise ValueError("give an opening to continue, e.g. python -m model 乔峰带阿朱")
        book = m.resolve_book(args.book, args.prompt)
        print(f"[{book or 'no novel'}]", file=sys.stderr)
        texts, _ = m.generate([args.prompt], length=args.length, temperature=args.temperature,
                              top_k=args.top_k, top_p=args.top_p, seed=args.seed, book=book)
    except (ModelError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(args.prompt + texts[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
