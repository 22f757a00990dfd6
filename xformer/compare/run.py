"""``run_comparison``: train every model of :mod:`.experiments` into its own run folder, measure it
(:mod:`.flops`) and write the report folder (:mod:`.report`)."""
from __future__ import annotations

import copy
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..config import from_dict
from ..folders import OutputFolder
from ..train.config import ExperimentConfig
from .experiments import METRIC, CompareConfig, entries
from .flops import measure
from .report import write_report


def run_comparison(cfg: CompareConfig, out: str | Path, quiet: bool = False, overwrite: bool = False) -> dict:
    """Train and measure every model; write the report folder ``out``; return results.json's content.
    ``quiet``: show no progress (see xformer/train/progress.py). A folder ``out`` that holds files is
    refused unless ``overwrite``: then the old report is moved aside until the new one is complete."""
    from ..data.registry import build_data
    from ..models import build_model
    from ..train.config import with_implied_args
    from ..train.progress import Progress
    from ..train.run import load_run_model, train_run

    out = Path(out)
    folder = OutputFolder(out, overwrite, "report")
    runs = out / "runs"
    todo = entries(cfg)
    results: dict[str, Any] = {
        "config": asdict(cfg), "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "domains": {d: {"metric": METRIC[d][0], "models": []} for d in cfg.domains}}
    datasets, models = {}, {}  # the data of each domain (one for all its models) and every model, for the plots
    progress = Progress(sum(e.trained for e in todo) * cfg.steps, label="compare", quiet=quiet)
    start = time.perf_counter()
    folder.replace()
    try:
        for entry in todo:
            progress.start(f"{entry.domain}: {entry.name}")  # the trainer reports its steps and evaluations
            experiment = from_dict(ExperimentConfig, copy.deepcopy(entry.experiment))
            if entry.domain not in datasets:
                datasets[entry.domain] = build_data(experiment.data.name, experiment.data.args)
            data = datasets[entry.domain]
            run_dir = runs / entry.domain / _slug(entry.name)
            row = {"name": entry.name, "kind": entry.kind, "run_dir": str(run_dir.relative_to(out)),
                   "experiment": entry.experiment}
            if entry.trained:
                before = progress.n
                wall = time.perf_counter()
                metrics = train_run(experiment, run_dir, progress=progress)
                row["wall_seconds"] = round(time.perf_counter() - wall, 2)
                progress.update(cfg.steps - (progress.n - before))  # a run stopped early still fills its share
                model = load_run_model(run_dir)[1]  # the weights its metrics describe
                row.update(steps=metrics["steps"], train_seconds=metrics["train_seconds"],
                           examples_per_second=round(metrics["steps"] * cfg.batch_size / metrics["train_seconds"], 1))
            else:
                model = build_model(with_implied_args(experiment.model, data.model_args))
                metrics = _evaluate_untrained(model, data)
                row.update(steps=0, train_seconds=0.0, wall_seconds=0.0, examples_per_second=None)
            models[entry.domain, entry.name] = model
            row.update(measure(entry, model, data))
            row["tokens_per_step"] = (row["tokens_per_example"] * cfg.batch_size
                                      if row["tokens_per_example"] else None)
            row["metrics"] = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
            row["metric"] = row["metrics"].get(METRIC[entry.domain][0])
            results["domains"][entry.domain]["models"].append(row)
        results["total_seconds"] = round(time.perf_counter() - start, 1)
        write_report(results, out, models, datasets)
    except BaseException:
        folder.failed()  # an incomplete report never replaces a complete one
        raise
    finally:
        progress.close()
    folder.started()
    return results


def _evaluate_untrained(model: nn.Module, data) -> dict[str, float]:
    """val/test metrics of a model with nothing to train (last value, seasonal naive)."""
    metrics = {}
    for split in ("val", "test"):
        dataset = getattr(data, split)
        if dataset is not None:
            loader = DataLoader(dataset, batch_size=256, collate_fn=data.collate)
            metrics.update({f"{split}_{k}": v for k, v in data.evaluate(model, loader).items()})
    return metrics


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower().split(" (")[0]).strip("_")


__all__ = ["run_comparison"]
