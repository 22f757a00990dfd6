"""`xformer evaluate RUN_DIR [--checkpoint best|last|step_N]`: rebuild a run's model from its folder and print its metrics as JSON."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import ConfigError


def run(args: argparse.Namespace) -> None:
    from ..train.run import evaluate_run

    if not (Path(args.run_dir) / "config.yaml").is_file() and (Path(args.run_dir) / "config.json").is_file():
        raise ConfigError(f"{args.run_dir} is a Hugging Face folder, not a run: evaluate needs a run's data; fine-tune "
                          f"it with xformer train RECIPE --init-from hf:{args.run_dir}, then evaluate that run "
                          "(generate reads the folder directly)")
    if not (Path(args.run_dir) / "config.yaml").is_file():
        raise ConfigError(f"{args.run_dir} is not a run folder (no config.yaml); give the --out folder of xformer train")
    print(json.dumps(evaluate_run(args.run_dir, args.checkpoint), indent=1))


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="re-evaluate a trained run and print its metrics as JSON",
        description="Rebuild the model of RUN_DIR from config.yaml and its best (else latest) checkpoint, "
                    "or the one --checkpoint names, evaluate it on the validation and test splits, print flat "
                    "metrics as JSON.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--checkpoint", default="best", metavar="best|last|step_N",
                   help="which checkpoint: best (default; the one metrics.json describes), last, or step_N "
                        "(one of RUN_DIR/checkpoints/step_*)")
    p.set_defaults(func=run)
