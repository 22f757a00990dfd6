"""`xformer average RUN_DIR --out DIR (--last K | --best K) [--overwrite]`: the average of a run's checkpoints
(fairseq's average_checkpoints.py, timm's avg_checkpoints.py) written as a run folder of its own, with its
metrics (xformer/train/average.py)."""
from __future__ import annotations

import argparse
import json
import sys


def run(args: argparse.Namespace) -> None:
    from ..train.average import average_run

    report = average_run(args.run_dir, args.out, args.last, args.best, args.overwrite, args.overrides)
    print(json.dumps(report["metrics"], indent=1))
    print(f"averaged {len(report['checkpoints'])} checkpoints of {args.run_dir} ({report['chosen']}: "
          f"{', '.join(report['checkpoints'])}) into the run {args.out}", file=sys.stderr)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "average", help="average a run's last or best checkpoints into a run folder of its own",
        description="Average the weights of RUN_DIR's newest K kept checkpoints (--last K, as fairseq's "
                    "average_checkpoints.py) or of its K best by the validation metric the run tracked "
                    "(--best K, train.early_stopping.metric, from metrics.jsonl; as timm's avg_checkpoints.py), "
                    "the moving averages where the run kept them (train.ema), and write the result to --out as "
                    "a run: the run's config.yaml and data files, one checkpoint, averaged.json (which ones), "
                    "metrics.json (its val/test metrics, printed as JSON) and the data's report. evaluate, "
                    "predict, generate, forecast, export and init_from read it as any run; it cannot be "
                    "resumed. A run keeps train.keep_last checkpoints (default 2) and its best one: train with "
                    "train.keep_last=K to keep K to average.",
        epilog="example: xformer train tasks/vit_digits.yaml --out runs/vit train.keep_last=5 && "
               "xformer average runs/vit --last 5 --out runs/vit_avg5")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("overrides", nargs="*", metavar="data.args.KEY=NEW",
                   help="the run's data at a new place (root, path, files, test_path), checked to be its own and "
                        "recorded in the average's config.yaml")
    p.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder for the averaged run")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--last", type=int, metavar="K", help="average the newest K kept checkpoints")
    which.add_argument("--best", type=int, metavar="K",
                       help="average the K kept checkpoints scored best by the run's validation metric")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out when it holds a run (the old one comes back if averaging fails)")
    p.set_defaults(func=run)
