"""Test MSE of ETTh1 runs under two protocols: every test window (how xformer scores, and what the tables
of benchmarks/README.md report) and the windows the reference code scores.

    python benchmarks/etth1_protocol.py RUN_DIR [RUN_DIR ...] [--out benchmarks/results/etth1_protocol.json]
    python benchmarks/etth1_protocol.py --ensemble RUN_DIR RUN_DIR RUN_DIR   # the runs' average forecast, scored once

The PatchTST and LTSF-Linear code (``data_provider/data_factory.py``) builds its test DataLoader with
``drop_last=True`` and batch size 128 (PatchTST's ETTh1 scripts; 32 for DLinear's), so the last
``n mod batch`` test windows, the latest weeks of the test period, are never scored. The published
tables are computed that way. This script loads each run's best checkpoint (``xformer.train.run.load_run``),
predicts every test window in order and reports the MSE over all n windows, over the first
floor(n / batch) * batch (the reference's), and over the dropped ones.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from xformer.batch import TARGETS
from xformer.train.ensemble import load_ensemble


def window_errors(run_dirs: list[Path]) -> dict[str, torch.Tensor]:
    """Squared error of every validation and test window (mean over its steps and channels), in order, of one
    run or of the ensemble of several (their forecasts averaged, ``xformer.ensemble.Ensemble``)."""
    _, model, data = load_ensemble(run_dirs)
    model.eval()
    errors = {"val": [], "test": []}
    with torch.no_grad():
        for split, windows in errors.items():
            for batch in DataLoader(getattr(data, split), batch_size=128, shuffle=False, collate_fn=data.collate):
                y_hat, y = model(batch)["prediction"].double(), batch[TARGETS].double()
                windows.append(((y_hat - y) ** 2).mean(dim=(1, 2)))
    return {split: torch.cat(windows) for split, windows in errors.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--batch", type=int, default=128, help="the reference's test batch size (DLinear: 32)")
    parser.add_argument("--ensemble", action="store_true", help="score the runs' average forecast, not each run")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    missing = [str(r) for r in args.runs if not (r / "config.yaml").is_file()]
    if missing:
        print(f"not run folders (no config.yaml): {', '.join(missing)}; give --out folders of xformer train",
              file=sys.stderr)
        sys.exit(2)
    torch.set_num_threads(1)
    results = {}
    groups = [args.runs] if args.ensemble else [[run] for run in args.runs]
    for group in groups:
        run = " + ".join(map(str, group))
        by_split = window_errors(group)
        errors = by_split["test"]
        n = len(errors)
        kept = n // args.batch * args.batch
        results[run] = {"val_mse": round(by_split["val"].mean().item(), 4), "windows": n, "scored_by_reference": kept, "test_mse_every_window": round(errors.mean().item(), 4),
                             "test_mse_reference_windows": round(errors[:kept].mean().item(), 4),
                             "test_mse_dropped_windows": round(errors[kept:].mean().item(), 4) if kept < n else None}
        print(run, json.dumps(results[run]), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
