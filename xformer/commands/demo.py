"""`xformer demo`: two tiny models learn digit tasks in seconds."""
from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> None:
    from ..demo import main

    main(steps=args.steps, seed=args.seed, quiet=args.quiet)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("demo", help="train two tiny models on digit tasks and report their accuracy",
                              description="Train a tiny encoder-decoder to reverse digit sequences and a tiny "
                                          "decoder to copy them; report greedy-decoding token accuracy.")
    p.add_argument("--steps", type=int, default=600, help="optimizer steps per model (default 600)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress on stderr; the results and errors stay")
    p.set_defaults(func=run)
