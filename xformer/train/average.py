"""The average of a run's checkpoints, as a run folder of its own: ``xformer average RUN --out AVG``.

The weights of the last K checkpoints of one run (Vaswani et al. 2017 averaged the last 5 of the base
Transformer, 20 of the big one; fairseq's ``average_checkpoints.py``), or of its best K by the validation metric
the run tracked (timm's ``avg_checkpoints.py``), averaged tensor by tensor:

    theta_avg = 1/K sum_k theta_k

Late in a schedule the weights circle a flat region; their mean lies nearer its middle than any one of them
(the idea of SWA, Izmailov et al. 2018), so the average is often as good as the best checkpoint or better, at the
cost of one model. Each tensor is summed in float64 and stored in its own dtype. A run trained with
``train.ema`` has the moving average of each checkpoint averaged (the weights it is evaluated with). Integer
buffers (a BatchNorm's batch count) are the newest checkpoint's, and a BatchNorm's running statistics are
averaged with the weights, as timm does: they are not recomputed for the averaged weights.

Runs fine-tuned from one ``init_from`` average the same way, one checkpoint each (a uniform model soup, Wortsman
et al. 2022): started from the same pretrained weights they stay in one basin, where the mean of their weights is
a model, often better than each (``check_soup``).

The result is a run folder: the run's config.yaml and the files its data wrote (classes.json, tokenizer/,
preprocess.json, series_scaler.json, data_split.json, ...), and one checkpoint named after the newest step
averaged, so ``evaluate``, ``predict``, ``generate``, ``forecast``, ``export`` and ``init_from`` read it as any
run. ``averaged.json`` records the checkpoints; ``metrics.json`` the average's val / test metrics over every
example, measured when it is written, and the data's report (a confusion matrix) is written again for it. It
holds no optimizer state, so ``--resume`` refuses it; train on from it with ``init_from``.
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import torch
import yaml

from ..config import ConfigError, from_dict, load_yaml
from ..data.registry import build_data
from ..data.vocab import META_FILE, without_learning_args
from ..folders import OutputFolder, check_distinct_runs, check_outside_data, not_a_run_folder, write_atomically
from .checkpoint import AVERAGED_FILE, EMA_FILE, kept_steps, read_eval_weights, read_state, save_checkpoint
from .config import ExperimentConfig, apply_overrides, metric_mode
from .data_identity import SPLIT_FILE, building_moved_data, check_run_data
from .metrics import metric_rows
from .resume import DATA_PATHS, absolute_data_paths, as_trained, check_data_there, moved_data_paths
from .rng import seed_everything
from .run import evaluate_model, load_run, run_checkpoint
from .same_data import dataset_defaults

# what a run folder holds of its training, not of its model and data: the average starts these afresh
HISTORY = ("checkpoints", "metrics.json", "metrics.jsonl", "train.log", "learning_curve.png", "tensorboard", "wandb",
           "wandb.json", "teacher.json", AVERAGED_FILE)


def choose_checkpoints(run_dir: Path, last: int | None = None, best: int | None = None) -> tuple[list[str], str]:
    """(the kept checkpoints to average, oldest first, as ``step_N``; how they were chosen). ``last``: the newest
    K; ``best``: the K whose evaluation (metrics.jsonl) scored best by the run's ``train.early_stopping`` metric."""
    if (last is None) == (best is None):
        raise ConfigError("give one of --last K (the newest K checkpoints) or --best K (the K best by the run's "
                          "validation metric)")
    k = last if last is not None else best
    if k < 2:
        raise ConfigError(f"average at least 2 checkpoints, not {k}; one checkpoint is evaluated as it is "
                          "(xformer evaluate RUN --checkpoint step_N)")
    kept = kept_steps(run_dir / "checkpoints")
    if not kept:
        raise ConfigError(f"{run_dir} holds no checkpoint yet (checkpoints/ is empty); train it first, or give a run "
                          "that has saved some")
    if len(kept) < k:
        raise ConfigError(f"{run_dir} keeps {len(kept)} checkpoint(s) ({', '.join(kept) or 'none'}), fewer than {k}; "
                          f"average at most {len(kept)}, or train with train.keep_last={k} (the best one is kept "
                          "beside the last ones) so that more are kept")
    if last is not None:
        return kept[-last:], f"the last {last}"
    rule = (load_yaml(run_dir / "config.yaml").get("train") or {}).get("early_stopping") or {}
    metric = rule.get("metric", "val_loss")
    mode = rule.get("mode") or metric_mode(metric)
    scores = _scores(run_dir, metric)
    ranked = [name for name in kept if name in scores]
    if len(ranked) < best:
        raise ConfigError(f"only {len(ranked)} of the {len(kept)} kept checkpoints of {run_dir} were evaluated on "
                          f"{metric} (metrics.jsonl); give --best {len(ranked)} or fewer, or --last {best}")
    ranked.sort(key=lambda name: scores[name] if mode == "min" else -scores[name])
    chosen = set(ranked[:best])
    return [name for name in kept if name in chosen], f"the best {best} by {metric} ({mode})"


def _scores(run_dir: Path, metric: str) -> dict[str, float]:
    """{step_N: the run's ``metric`` evaluated at step N} from metrics.jsonl (the last record of a step wins)."""
    path = run_dir / "metrics.jsonl"
    rows = [row for _, row in metric_rows(path)] if path.is_file() else []
    return {f"step_{row['step']}": float(row[metric]) for row in rows
            if isinstance(row.get(metric), (int, float)) and math.isfinite(row[metric])}


def average_weights(paths: list[Path]) -> dict[str, torch.Tensor]:
    """theta_avg = 1/K sum_k theta_k over the checkpoint folders ``paths`` (oldest first), each floating tensor
    summed in float64 and given back in its dtype; other tensors (integer buffers) as the newest holds them."""
    total: dict[str, torch.Tensor] = {}
    newest = read_eval_weights(paths[-1])
    for path in paths:
        weights = newest if path == paths[-1] else read_eval_weights(path)
        if weights.keys() != newest.keys():  # one run's checkpoints: only a hand-made folder differs
            raise ConfigError(f"checkpoint {path} holds other tensors than {paths[-1]}; average checkpoints of one run")
        for name, tensor in weights.items():
            if tensor.is_floating_point():
                total[name] = total.get(name, 0) + tensor.double()
    return {name: (total[name] / len(paths)).to(t.dtype) if name in total else t for name, t in newest.items()}


def average_run(run_dirs: str | Path | list, out: str | Path, last: int | None = None, best: int | None = None,
                overwrite: bool = False, data_overrides: list[str] = (), checkpoint: str = "best") -> dict:
    """Write the average of one run's chosen checkpoints (``choose_checkpoints``), or of one checkpoint of each
    of several runs (``checkpoint``; a soup, ``check_soup``), as the run folder ``out`` (new or empty, or
    replaced with ``overwrite``: the old one comes back if this fails); return what averaged.json records and the
    average's metrics. ``data_overrides`` (``data.args.KEY=NEW`` of ``DATA_PATHS``): the (first) run's data at a
    new place, which the average records and is scored on once proved the run's own."""
    runs = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(r) for r in run_dirs]
    for run in runs:
        if not (run / "config.yaml").is_file():
            raise ConfigError(f"{not_a_run_folder(run)}; give the --out folder of xformer train")
        if (load_yaml(run / "config.yaml").get("data") or {}).get("name") == "forecaster":
            raise ConfigError(f"{run} is a Forecaster.save folder, which keeps one checkpoint; average the "
                              "checkpoints of an xformer train run")
        if run.resolve().is_relative_to(Path(out).resolve()):
            raise ConfigError(f"--out {out} would hold the run folder {run}; give a folder of its own")
    first = runs[0]
    if len(runs) == 1:
        if checkpoint != "best":
            raise ConfigError("--checkpoint picks the checkpoint of each of several runs; the checkpoints of one run "
                              "are chosen by --last K or --best K")
        names, rule = choose_checkpoints(first, last, best)
        paths = [run_checkpoint(first, name) for name in names]
        chose = f"--last {last}" if last is not None else f"--best {best}"
    else:
        if last is not None or best is not None:
            raise ConfigError("--last and --best choose among the checkpoints of one run; of several runs one "
                              "checkpoint each is averaged (--checkpoint best, last or step_N)")
        check_soup(runs)
        paths = [run_checkpoint(run, checkpoint) for run in runs]
        names, rule = [f"{run}/checkpoints/{path.name}" for run, path in zip(runs, paths)], f"each run's {checkpoint}"
        chose = " ".join(map(str, runs[1:])) + (f" --checkpoint {checkpoint}" if checkpoint != "best" else "")
    recipe = _moved_data(load_yaml(first / "config.yaml"), list(data_overrides))
    check_data_there((recipe.get("data") or {}).get("args") or {}, f"xformer average {first} {chose} --out {out}")
    check_outside_data(out, "--out", runs)
    if data_overrides:
        _check_moved_data(first, recipe)
    folder = OutputFolder(out, overwrite, "run", marker="config.yaml")
    weights = average_weights(paths)
    state = read_state(paths[-1] if len(runs) == 1 else paths[0])  # the newest step; the first run's of a soup
    sources = {"run": str(first.resolve())} if len(runs) == 1 else {"runs": [str(r.resolve()) for r in runs]}
    record = {**sources, "checkpoints": names, "chosen": rule, "ema": any((p / EMA_FILE).is_file() for p in paths)}
    try:
        folder.replace()
        for item in first.iterdir():
            if item.name not in HISTORY and item.name != "config.yaml" and not item.name.startswith("."):
                copy = shutil.copytree if item.is_dir() else shutil.copy2
                copy(item, folder.path / item.name)
        write_atomically(folder.path / "config.yaml", yaml.safe_dump(recipe, sort_keys=False))
        save_checkpoint(folder.path / "checkpoints", state["step"], weights, {},
                        {**{k: v for k, v in state.items() if k != "files"}, "averaged": names}, set(), 1, True)
        write_atomically(folder.path / AVERAGED_FILE, json.dumps(record, indent=1) + "\n")
        metrics = evaluate_model(*load_run(folder.path), report_dir=folder.path)
        metrics.update(steps=state["step"], best_step=state["step"])
        write_atomically(folder.path / "metrics.json", json.dumps(metrics, indent=1) + "\n")
        folder.started()
    finally:
        folder.failed()  # before started: the new folder goes, an old one replaced comes back; after: nothing
    return {**record, "metrics": metrics}


def check_soup(runs: list[Path]) -> None:
    """Several runs average into one model (a uniform soup, Wortsman et al. 2022) only when their weights are
    aligned: fine-tuned from the same starting weights (one ``init_from``), with one model and the same data
    (``check_same_data``, as an ensemble's). Networks initialised apart have their units in unrelated orders, and
    the mean of their weights is no model; their outputs average instead (``xformer evaluate RUN1 RUN2``)."""
    from .ensemble import check_same_data

    check_distinct_runs(runs)
    recipes = [load_yaml(run / "config.yaml") for run in runs]
    starts = [recipe.get("init_from") for recipe in recipes]
    if not all(starts) or len(set(map(str, starts))) > 1:
        shown = ", ".join(f"{run}: {start or 'none (random)'}" for run, start in zip(runs, starts))
        raise ConfigError(f"the runs were not fine-tuned from the same weights ({shown}), so their weights do not "
                          "line up and their average is no model; average runs of one init_from (a model soup), "
                          f"or evaluate them as an ensemble: xformer evaluate {' '.join(map(str, runs))}")
    for run, recipe in zip(runs[1:], recipes[1:]):
        parts = [part for part in ("core", "tokenizer", "head", "baseline", "architecture")
                 if (recipe.get("model") or {}).get(part) != (recipes[0].get("model") or {}).get(part)]
        if parts:
            raise ConfigError(f"{run} has another model.{parts[0]} than {runs[0]}; average runs of one model (seeds "
                              "or settings of its training), or evaluate them as an ensemble")
        check_same_data(runs[0], run)


def _check_moved_data(run: Path, recipe: dict) -> None:
    """The run's data at the new place ``recipe`` gives must be provably its own (``check_run_data``), before
    anything is written; built as ``load_run`` builds it (seeded, with the run's vocabulary, without the settings
    its data never read: ``as_trained``), which scores it next. Data that does not build at all is not the run's
    either, which is said first (``building_moved_data``)."""
    saved, config = (from_dict(ExperimentConfig, r) for r in (load_yaml(run / "config.yaml"), recipe))
    moved = moved_data_paths(saved, config)
    if not moved:  # given at the run's own place: load_run checks it as any run's
        return
    args = as_trained(config).data.args
    if (run / "tokenizer" / META_FILE).is_file() and "tokenizer" in dataset_defaults(config.data.name):
        args = without_learning_args(args, run / "tokenizer")
    seed_everything(config.train.seed)
    with building_moved_data(run, moved, "average"):
        data = build_data(config.data.name, args)
    check_run_data(run, data, args, "average", moved=moved if (run / SPLIT_FILE).is_file() else None)


def _moved_data(recipe: dict, overrides: list[str]) -> dict:
    """``recipe`` (config.yaml's) with the run's data given at a new place (``data.args.KEY=NEW``, absolute)."""
    for item in overrides:
        key = item.partition("=")[0]
        if not key.startswith("data.args.") or key[len("data.args."):] not in DATA_PATHS or "=" not in item:
            raise ConfigError(f"'{item}': average takes the run's data at a new place only, "
                              f"data.args.KEY=NEW for KEY in {', '.join(DATA_PATHS)} (the model and its data are the "
                              "run's)")
    if not overrides:
        return recipe
    recipe = apply_overrides(recipe, overrides)
    recipe["data"]["args"] = absolute_data_paths(recipe["data"]["args"])
    return recipe


__all__ = ["choose_checkpoints", "average_weights", "average_run", "check_soup"]
