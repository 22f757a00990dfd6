"""`xformer compare [--domains text,images,series] [--steps N] [--seconds S] [--out DIR] ...`: the main job.

Trains one transformer core per domain and each domain's classic baselines on the embedded
defaults (or the files given), then writes DIR/report.md, report.html, results.json and the
plots (see xformer/compare/: experiments, FLOPs, running, report).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import ConfigError


def run(args: argparse.Namespace) -> None:
    from ..compare import CompareConfig, run_comparison

    for path in [*(args.text_data or []), *([args.series_data] if args.series_data else [])]:
        if not Path(path).is_file():
            raise ConfigError(f"data file not found: {path}")
    out = Path(args.out)
    cfg = CompareConfig(domains=[d.strip() for d in args.domains.split(",") if d.strip()], steps=args.steps,
                        seconds=args.seconds, d_model=args.d_model, n_layers=args.layers, n_heads=args.heads,
                        d_ff=args.d_ff or 2 * args.d_model, batch_size=args.batch_size, text_data=args.text_data,
                        series_data=args.series_data, seed=args.seed, device=args.device)
    results = run_comparison(cfg, out, quiet=args.quiet, overwrite=args.overwrite)
    if not args.quiet:
        print(f"wrote {out}/report.md, report.html, results.json and {len(results['plots'])} plots "
              f"in {results['total_seconds']} s", file=sys.stderr)
    for domain, info in results["domains"].items():
        best = ", ".join(f"{row['name']} {row['metric']:.4g}" for row in info["models"] if row["metric"] is not None)
        print(f"{domain} ({info['metric']}): {best}")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "compare", help="the main job: one transformer core on text, images and series, beside classic baselines",
        description="Train the same transformer core (same width, depth, heads) as a GPT-style language model, "
                    "a ViT classifier and a PatchTST-style forecaster, and each domain's classic baselines, on "
                    "the embedded defaults; write a report folder (report.md, report.html, results.json, plots).",
        epilog="example: xformer compare --steps 500 --text-data ../shared/data/tinyshakespeare.txt --out compare")
    p.add_argument("--domains", default="text,images,series", help="comma-separated subset of text,images,series")
    p.add_argument("--steps", type=int, default=1000, help="optimizer steps of every trained model (default 1000)")
    p.add_argument("--seconds", type=float, help="also stop each model's training after this many seconds")
    p.add_argument("--out", default="compare", metavar="DIR",
                   help="report folder (default ./compare); one that holds files is refused without --overwrite")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the report in --out: the old one is moved aside and deleted once the new one is "
                        "complete (restored if it fails)")
    p.add_argument("--text-data", nargs="+", metavar="FILE", help="text files (default: the bundled Python manual)")
    p.add_argument("--series-data", metavar="FILE.csv", help="CSV with a date column (default: generated series)")
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--d-ff", type=int, help="feed-forward width (default 2 x d-model)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--quiet", action="store_true",
                   help="no progress on stderr (nor the closing 'wrote ...' line); results and errors stay")
    p.set_defaults(func=run)
