"""The `xformer` command. Subcommands are added by the parts of the toolkit that own them."""
from __future__ import annotations

import argparse
import sys

from .config import ConfigError


def _demo(args: argparse.Namespace) -> None:
    from .demo import main

    main(steps=args.steps, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xformer", description="One transformer core for text, images and series.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__import__('xformer').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser("demo", help="train two tiny models on digit tasks and report their accuracy",
                          description="Train a tiny encoder-decoder to reverse digit sequences and a tiny "
                                      "decoder to copy them; report greedy-decoding token accuracy.")
    demo.add_argument("--steps", type=int, default=600, help="optimizer steps per model (default 600)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ConfigError as e:
        print(f"xformer: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xformer: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
