"""`xformer average RUN_DIR --out DIR (--last K | --best K) [data.args.KEY=NEW] [--overwrite]`: the average of a
run's checkpoints (fairseq's average_checkpoints.py, timm's avg_checkpoints.py), and `xformer average RUN_DIR
RUN_DIR ... --out DIR [--checkpoint best|last|step_N]`: of runs fine-tuned from one init_from (a model soup),
written as a run folder of its own, with its metrics (xformer/train/average.py)."""
from __future__ import annotations

import argparse
import json
import sys

from ..config import is_override


def run(args: argparse.Namespace) -> None:
    from ..train.average import average_run

    runs = [item for item in args.items if not is_override(item)]
    overrides = [item for item in args.items if is_override(item)]
    report = average_run(runs, args.out, args.last, args.best, args.overwrite, overrides, args.checkpoint)
    print(json.dumps(report["metrics"], indent=1))
    print(f"averaged {len(report['checkpoints'])} checkpoints ({report['chosen']}: {', '.join(report['checkpoints'])}) "
          f"into the run {args.out}", file=sys.stderr)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "average", help="average a run's last or best checkpoints, or runs of one init_from, into a run folder",
        description="Average the weights of RUN_DIR's newest K kept checkpoints (--last K, as fairseq's "
                    "average_checkpoints.py) or of its K best by the validation metric the run tracked "
                    "(--best K, train.early_stopping.metric, from metrics.jsonl; as timm's avg_checkpoints.py), "
                    "the moving averages where the run kept them (train.ema); or, given several RUN_DIRs "
                    "fine-tuned from one init_from with one model and data (a model soup, Wortsman et al. 2022), "
                    "one checkpoint of each (--checkpoint). The result goes to --out as a run: the (first) run's "
                    "config.yaml and data files, one checkpoint, averaged.json (which ones), metrics.json (its "
                    "val/test metrics, printed as JSON) and the data's report. evaluate, predict, generate, "
                    "forecast, export and init_from read it as any run; it cannot be resumed. A run keeps "
                    "train.keep_last checkpoints (default 2) and its best one: train with train.keep_last=K to keep "
                    "K to average. data.args.KEY=NEW gives the run's data at a new place.",
        epilog="examples: xformer average runs/vit --last 5 --out runs/vit_avg5; xformer average runs/ft_s1 "
               "runs/ft_s2 runs/ft_s3 --out runs/ft_soup (three seeds fine-tuned from one checkpoint)")
    p.add_argument("items", nargs="+", metavar="RUN_DIR [RUN_DIR ...] [data.args.KEY=NEW ...]")
    p.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder for the averaged run")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--last", type=int, metavar="K", help="one run: average its newest K kept checkpoints")
    which.add_argument("--best", type=int, metavar="K",
                       help="one run: average the K kept checkpoints scored best by its validation metric")
    p.add_argument("--checkpoint", default="best", metavar="best|last|step_N",
                   help="several runs: the checkpoint of each to average (default best)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out when it holds a run (the old one comes back if averaging fails)")
    p.set_defaults(func=run)
