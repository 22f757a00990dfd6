"""`xformer compare [--domains text,images,series,seq2seq,classify] [--seeds N] [--budgets 250,1000] [--out DIR] ...`:
the main job; `xformer compare --resume DIR` continues one that was stopped.

Trains one transformer core per domain and each domain's classic baselines on the embedded
defaults (or the data given), at every budget and seed, then writes DIR/report.md, report.html,
results.json and the plots (see xformer/compare/: experiments, FLOPs, running, study, report).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ..config import ConfigError


def run(args: argparse.Namespace) -> None:
    from ..compare import CompareConfig, run_comparison
    from ..compare.run import resumed_config

    if args.resume:
        given = [f"--{dest.replace('_', '-')}" for dest, default in args.option_defaults.items()
                 if dest not in ("resume", "quiet") and getattr(args, dest) != default]
        if given:
            raise ConfigError(f"give --resume {args.resume} alone (--quiet aside): a stopped compare goes on with "
                              f"the options it was started with ({Path(args.resume) / 'compare.json'}); drop "
                              f"{', '.join(given)}")
        _report(run_comparison(resumed_config(args.resume), args.resume, quiet=args.quiet, resume=True),
                Path(args.resume), args.quiet)
        return
    out = Path(args.out)
    budgets = _numbers(args.budgets, int, "--budgets") if args.budgets else None
    budget_seconds = _numbers(args.budget_seconds, float, "--budget-seconds") if args.budget_seconds else None
    cfg = CompareConfig(domains=[d.strip() for d in args.domains.split(",") if d.strip()], steps=args.steps,
                        seconds=args.seconds, d_model=args.d_model, n_layers=args.layers, n_heads=args.heads,
                        d_ff=2 * args.d_model if args.d_ff is None else args.d_ff, batch_size=args.batch_size,
                        text_data=args.text_data, series_data=args.series_data, image_data=args.image_data,
                        classify_data=args.classify_data, input_len=args.input_len,
                        horizon=args.horizon, seed=args.seed, seeds=args.seeds, budgets=budgets,
                        budget_seconds=budget_seconds, device=args.device)
    _report(run_comparison(cfg, out, quiet=args.quiet, overwrite=args.overwrite), out, args.quiet)


def _report(results: dict, out: Path, quiet: bool) -> None:
    if not quiet:
        print(f"wrote {out}/report.md, report.html, results.json and {len(results['plots'])} plots "
              f"in {results['total_seconds']} s", file=sys.stderr)
    for domain, info in results["domains"].items():
        models = ", ".join(f"{row['name']} {row['metric']:.4g} ± {row['metric_std']:.2g}" for row in info["models"]
                           if row["metric"] is not None)
        print(f"{domain} ({info['metric']}, mean ± s over {len(results['seeds'])} seed(s)): {models}")
    for line in results["summary"]:
        print(line.replace("**", ""))


def _numbers(text: str, kind, option: str) -> list:
    from ..compare.experiments import BUDGETS

    try:
        return [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{option} takes {BUDGETS[option]}, got {text!r}") from None


class CompareHelp(argparse.HelpFormatter):
    """argparse's help, but --classify-data reads TRAIN [TEST]: argparse has no nargs for one or two values
    (nargs="+" would show TRAIN [TEST ...]); CompareConfig refuses a third file."""

    def _format_args(self, action, default_metavar):
        return "TRAIN [TEST]" if action.dest == "classify_data" else super()._format_args(action, default_metavar)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "compare", formatter_class=CompareHelp,
        help="the main job: one transformer core on text, images and series, beside classic baselines",
        description="Train the same transformer core (same width, depth, heads) as a GPT-style language model, "
                    "a ViT classifier, a PatchTST-style forecaster (and, with seq2seq, an encoder-decoder; with "
                    "classify, a PatchTST-style series classifier), and "
                    "each domain's classic baselines, on the embedded defaults or your data, over seeds and "
                    "budgets; write a report folder (report.md, report.html, results.json, plots) that opens "
                    "with a summary: the best model per domain, the transformer's rank, ties, crossovers.",
        epilog="examples: xformer compare --seeds 3 --out compare;  xformer compare --budgets 250,1000,4000 "
               "--seeds 2 --text-data ../shared/data/tinyshakespeare.txt --series-data ../shared/data/ETTh1.csv")
    p.add_argument("--domains", default="text,images,series",
                   help="comma-separated subset of text,images,series,seq2seq,classify, each once (default "
                        "text,images,series); "
                        "seq2seq reverses digit sequences, classify classifies series (PatchTST-style classifier "
                        "vs FCN and ResNet)")
    p.add_argument("--seeds", type=int, default=1,
                   help="run every trained model with seeds SEED .. SEED+N-1; tables show mean ± standard "
                        "deviation and differences within the spread are ties (default 1; 3 to conclude anything)")
    p.add_argument("--steps", type=int, default=1000, help="optimizer steps of every trained model (default 1000)")
    p.add_argument("--budgets", metavar="STEPS,STEPS,...",
                   help="train every model from scratch at each of these step budgets (e.g. 250,1000,4000); "
                        "the report plots the metric against training FLOPs and wall time and states the "
                        "crossovers (default: the one budget --steps)")
    p.add_argument("--budget-seconds", metavar="S,S,...",
                   help="as --budgets, in seconds of training per model (each run's schedule spans --steps)")
    p.add_argument("--seconds", type=float,
                   help="also stop each model's training after this many seconds (not with --budget-seconds)")
    p.add_argument("--out", default="compare", metavar="DIR",
                   help="report folder (default ./compare); one that holds files is refused without --overwrite")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the report in --out: the old one is moved aside and deleted once the new one is "
                        "complete (restored if it fails)")
    p.add_argument("--text-data", nargs="+", metavar="FILE",
                   help="text files, or folders of .txt files (default: the bundled Python manual)")
    p.add_argument("--image-data", metavar="DIR|NAME",
                   help="an image folder (train/<class>/..., val/ and test/ optional; resized to 32x32) or digits, "
                        "mnist, fashion_mnist, cifar10 (read from ./data, nothing downloaded); default digits")
    p.add_argument("--series-data", metavar="FILE.csv",
                   help="CSV with a column named date, or a long unique_id, ds, y file (default: generated series)")
    p.add_argument("--classify-data", nargs="+",
                   help="classify: a UCR-archive .tsv/.txt (label, then the values, per line), a .ts (sktime/aeon) "
                        "or an .npz (X, y) training file, and optionally its own test file (without one, a "
                        "stratified 20%% of TRAIN is the test set); default: generated Synthetic Control Chart "
                        "series (600, 6 classes)")
    p.add_argument("--input-len", type=int, default=96, help="series: time steps the models read (default 96)")
    p.add_argument("--horizon", type=int, default=24, help="series: time steps they forecast (default 24)")
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--d-ff", type=int, help="feed-forward width (default 2 x d-model)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (a GPU when there is one, as train does), cpu or cuda")
    p.add_argument("--resume", metavar="DIR",
                   help="continue the compare stopped in DIR (Ctrl-C, a crash) with the options it was started "
                        "with: its finished runs are kept, the others trained (a run stopped part way from its start)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress on stderr (nor the closing 'wrote ...' line); results and errors stay")
    # a value that opens with a minus and a digit is a value, as newer argparse has it: --budgets -5,10 reaches
    # compare's own refusal instead of "expected one argument" (compare has no option that looks like a number)
    p._negative_number_matcher = re.compile(r"-\.?\d")
    p.set_defaults(func=run)
    p.set_defaults(option_defaults={k: v for k, v in vars(p.parse_args([])).items() if k != "func"})
