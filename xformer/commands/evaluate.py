"""`xformer evaluate RUN_DIR [--checkpoint best|last|step_N] [data.args.KEY=VALUE ...]`: rebuild a run's model from
its folder and print its metrics as JSON, on the run's data or on other data of the same task."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import ConfigError
from ..folders import not_a_run_folder


def run(args: argparse.Namespace) -> None:
    from ..train.run import evaluate_run

    if not (Path(args.run_dir) / "config.yaml").is_file() and (Path(args.run_dir) / "config.json").is_file():
        raise ConfigError(f"{args.run_dir} is a Hugging Face folder, not a run: evaluate needs a run's data; fine-tune "
                          f"it with xformer train RECIPE --init-from hf:{args.run_dir}, then evaluate that run "
                          "(generate reads the folder directly)")
    if not (Path(args.run_dir) / "config.yaml").is_file():
        raise ConfigError(f"{not_a_run_folder(args.run_dir)}; give the --out folder of xformer train")
    print(json.dumps(evaluate_run(args.run_dir, args.checkpoint, args.data_overrides), indent=1))


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="re-evaluate a trained run and print its metrics as JSON",
        description="Rebuild the model of RUN_DIR from config.yaml and its best (else latest) checkpoint, "
                    "or the one --checkpoint names, evaluate it on the validation and test splits, print flat "
                    "metrics as JSON. data.args.KEY=VALUE overrides evaluate it on other data of the same task "
                    "instead (e.g. data.args.root=new_images: its val/ and test/ splits), refused in one line "
                    "when that data implies another model or labels its classes or columns differently.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("data_overrides", nargs="*", metavar="data.args.KEY=VALUE",
                   help="other data for the run's data set, values read as YAML")
    p.add_argument("--checkpoint", default="best", metavar="best|last|step_N",
                   help="which checkpoint: best (default; the one metrics.json describes), last, or step_N "
                        "(one of RUN_DIR/checkpoints/step_*)")
    p.set_defaults(func=run)
