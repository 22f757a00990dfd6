"""`xformer train CONFIG.yaml [a.b=c ...] [--out RUN_DIR] [--resume RUN_DIR] [--init-from SOURCE]`."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

from ..config import ConfigError, is_override


def run(args: argparse.Namespace) -> None:
    from ..train.config import load_experiment
    from ..train.progress import Progress
    from ..train.resume import check_run_folder
    from ..train.run import train_run

    for flag, value, wanted in (("--out", args.out, "the new run's folder"),
                                ("--resume", args.resume, "the folder of the run to continue"),
                                ("--init-from", args.init_from, "a run folder, hf:FOLDER or timm:FILE#MODEL")):
        if value is not None and not value.strip():  # "" would quietly mean the default folder, or no init
            raise ConfigError(f"{flag} was given an empty value; give {wanted}, or leave {flag} out")
    if args.resume and args.out:
        raise ConfigError("give --resume RUN_DIR or --out RUN_DIR, not both: a resumed run writes into its own folder")
    if args.resume and args.overwrite:
        raise ConfigError("give --resume RUN_DIR (continue it) or --overwrite (replace it), not both")
    if args.resume and args.init_from:
        raise ConfigError("give --resume RUN_DIR or --init-from SOURCE, not both: a resumed run continues from its "
                          "own checkpoint")
    if args.config is None and not args.resume:
        raise ConfigError("give a recipe: xformer train CONFIG.yaml (see tasks/), or --resume RUN_DIR")
    if args.config is not None and is_override(args.config):  # `xformer train --resume RUN a.b=c`
        args.overrides.insert(0, args.config)
        args.config = None
    config_path = args.config or check_run_folder(args.resume) / "config.yaml"
    config = load_experiment(config_path, args.overrides)
    if args.init_from is not None:  # as the recipe's init_from (validated again)
        config = dataclasses.replace(config, init_from=args.init_from)
    run_dir = Path(args.resume or args.out or f"runs/{Path(config_path).stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    recipe = Path(config_path).resolve()
    if not args.resume and recipe.is_relative_to(run_dir.resolve()) and recipe != (run_dir / "config.yaml").resolve():
        raise ConfigError(f"the recipe {config_path} lies inside {run_dir}, which the new run would replace (deleting "
                          "it); move the recipe out of it first, or give the run another folder (--out)")
    progress = Progress(quiet=True) if args.quiet else None  # None: the trainer shows its own
    metrics = train_run(config, run_dir, resume=bool(args.resume), progress=progress, overwrite=args.overwrite)
    if os.environ.get("RANK", "0") == "0":  # under torchrun: once, by the process that wrote metrics.json
        print(json.dumps(metrics, indent=1))


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a model from a YAML recipe and write a run folder",
        description="Train the experiment a YAML recipe describes (model, data, train). Writes RUN_DIR/config.yaml, "
                    "metrics.jsonl, metrics.json, learning_curve.png and checkpoints/. Under torchrun, trains "
                    "with DDP (or FSDP2: train.distributed=fsdp).",
        epilog="example: xformer train tasks/reverse.yaml train.steps=200 train.lr=1e-3 --out runs/reverse")
    p.add_argument("config", nargs="?", help="YAML recipe (see tasks/); with --resume, defaults to RUN_DIR/config.yaml")
    p.add_argument("overrides", nargs="*", metavar="a.b=c", help="override recipe keys, values read as YAML (a mapping merges into the recipe's); ~a.b removes a key")
    p.add_argument("--out", metavar="RUN_DIR", help="run folder (default runs/<recipe>-<date-time>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint; "
                   "train.steps / train.epochs may grow (the schedule is rebuilt for the new length), keys "
                   "that would change the saved state are refused")
    p.add_argument("--overwrite", action="store_true",
                   help="replace what RUN_DIR holds: the old run is moved aside and deleted once the new one has "
                        "saved its first checkpoint (restored if it fails before)")
    p.add_argument("--init-from", metavar="SOURCE",
                   help="start from pre-trained weights (the recipe's init_from): a run folder, hf:FOLDER (a local "
                        "Hugging Face GPT-2 / BERT folder with its tokenizer, or a PatchTSTForPrediction folder for "
                        "a forecasting dataset) or timm:FILE#MODEL (a timm ViT state dict and its model name); the "
                        "core and tokenizer come from it (model.architecture must match: encoder for BERT, "
                        "PatchTST and timm); the recipe names the head, whose weights are copied where their shapes "
                        "match, a classifier's rows following the class names (another set of classes: a fresh "
                        "classifier)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr; the metrics and errors stay")
    p.set_defaults(func=run)
