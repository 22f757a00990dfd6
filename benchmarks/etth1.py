"""ETTh1, horizons 96/192/336/720: PatchTST/42 and DLinear recipes next to the published table.

    python benchmarks/etth1.py [--data ../shared/data/ETTh1.csv] [--horizons 96,192,336,720]
                               [--models patchtst,dlinear] [--threads N] [patchtst.train.epochs=20 ...]

Runs ``tasks/patchtst_etth1_{H}.yaml`` and ``tasks/dlinear_etth1.yaml`` (horizon overridden)
through ``train_run`` (the code path of ``xformer train``), one after the other, and scores
the last-value and seasonal-naive (24 h) baselines on the same test windows. Test MSE/MAE are on
the standardised scale over every test window (the reference code drops up to 113 of them),
all 7 channels and all horizon steps, for the checkpoint of best validation loss, as in the
papers. Overrides ``patchtst.a.b=c`` / ``dlinear.a.b=c`` go to one family's recipes (e.g. fewer
epochs on a CPU). Results are merged into benchmarks/results/etth1.json after every run (a run
replaces the earlier one of the same model, horizon and overrides), so a long benchmark that is
stopped keeps what it finished, and horizons can be run in separate processes.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from run_folders import check_fresh, clear  # benchmarks/run_folders.py, beside this script
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results/etth1.json"
# PatchTST (ICLR 2023) Table 3, ETTh1, MSE/MAE at L=336 (PatchTST/42) and L=336 (DLinear)
PUBLISHED = {"patchtst": {96: (.375, .399), 192: (.414, .421), 336: (.431, .436), 720: (.449, .466)},
             "dlinear": {96: (.375, .399), 192: (.405, .416), 336: (.439, .443), 720: (.472, .490)}}


def recipe(model: str, horizon: int) -> Path:
    return ROOT / ("tasks/dlinear_etth1.yaml" if model == "dlinear" else f"tasks/patchtst_etth1_{horizon}.yaml")


def run_model(model: str, horizon: int, data: Path, out: Path, overrides: list[str]) -> dict:
    from xformer.train.config import load_experiment
    from xformer.train.run import train_run

    config = load_experiment(recipe(model, horizon), [f"data.args.path={data}", f"data.args.horizon={horizon}",
                                                      *overrides])
    clear(out)
    start = time.perf_counter()
    metrics = train_run(config, out)
    wall = time.perf_counter() - start
    published = PUBLISHED[model][horizon]
    return {"model": model, "horizon": horizon, "test_mse": round(metrics["test_mse"], 4),
            "test_mae": round(metrics["test_mae"], 4), "val_mse": round(metrics["val_mse"], 4),
            "published_mse": published[0], "published_mae": published[1],
            "epochs": config.train.epochs, "steps": metrics["steps"], "best_step": metrics["best_step"],
            "train_seconds": metrics["train_seconds"], "wall_seconds": round(wall, 1),
            "recipe": str(recipe(model, horizon).relative_to(ROOT)), "overrides": overrides, "run_dir": str(out)}


def naive_baselines(data: Path, horizon: int) -> dict:
    from xformer.baselines import build_baseline
    from xformer.data.registry import build_data

    bundle = build_data("ett", {"path": str(data), "horizon": horizon})
    loader = DataLoader(bundle.test, batch_size=512)
    out = {}
    for name, args in (("last_value", {}), ("seasonal_naive", {"period": 24})):
        model = build_baseline(name, n_channels=7, input_len=336, horizon=horizon, **args)
        errors = bundle.evaluate(model, loader)
        out[name] = {"test_mse": round(errors["mse"], 4), "test_mae": round(errors["mae"], 4)}
    out["test_windows"] = len(bundle.test)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/ETTh1.csv")
    parser.add_argument("--horizons", default="96,192,336,720")
    parser.add_argument("--models", default="patchtst,dlinear")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=ROOT / "runs/bench-etth1")
    parser.add_argument("overrides", nargs="*", metavar="model.a.b=c", help="patchtst.train.epochs=20, dlinear....")
    parser.add_argument("--overwrite", action="store_true", help="replace run folders left by an earlier run")
    args = parser.parse_args()
    check_fresh([Path(f"{args.out}-{model}-{horizon}") for horizon in args.horizons.split(",")
                 for model in args.models.split(",")], args.overwrite)
    if not args.data.is_file():
        raise SystemExit(f"ETTh1 not found at {args.data}; pass --data (ETDataset ETT-small/ETTh1.csv)")
    torch.set_num_threads(args.threads)
    models = args.models.split(",")
    overrides = {m: [o.split(".", 1)[1] for o in args.overrides if o.startswith(m + ".")] for m in models}
    machine = f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    RESULTS.parent.mkdir(exist_ok=True)
    for horizon in (int(h) for h in args.horizons.split(",")):
        naive = naive_baselines(args.data, horizon)
        for model in models:
            run = run_model(model, horizon, args.data, Path(f"{args.out}-{model}-{horizon}"), overrides[model])
            run.update(machine=machine, date=time.strftime("%Y-%m-%d"))
            save_result(run, horizon, naive)
            print(json.dumps(run), flush=True)


def save_result(run: dict, horizon: int, naive: dict) -> None:
    """Merge one run into RESULTS, re-read first: other processes may be writing other horizons."""
    result = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {"runs": [], "naive": {}}
    same = (run["model"], run["horizon"], run["overrides"])
    result["runs"] = [r for r in result["runs"] if (r["model"], r["horizon"], r["overrides"]) != same] + [run]
    result["runs"].sort(key=lambda r: (r["horizon"], r["model"], r["epochs"] or 0))  # a step-based run: None
    result["naive"][str(horizon)] = naive
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    tmp.replace(RESULTS)


if __name__ == "__main__":
    main()
