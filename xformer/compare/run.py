"""``run_comparison``: train every model of :mod:`.experiments` at every budget and seed, each into its own
run folder, measure it (:mod:`.flops`), aggregate the seeds (:mod:`.study`) and write the report folder
(:mod:`.report`).

Training FLOPs of a run = 3 x forward FLOPs per example x examples seen (steps x batch): the backward
pass costs about twice the forward one (Kaplan et al. 2020's 6 N per token = 3 x 2 N); evaluations
are not counted.

A stopped compare (Ctrl-C, a crash) keeps its finished runs: the report folder records its options
(compare.json) and each run folder trained to its end says so (compare_run.json, with its wall time), so
``resume=True`` (``xformer compare --resume DIR``) reads those back and trains only the rest; a run stopped
part way is trained again from its start, so that every run's wall time is measured whole.
"""
from __future__ import annotations

import copy
import json
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from .. import __version__
from ..config import ConfigError, from_dict
from ..folders import OutputFolder, write_atomically
from ..train.config import ExperimentConfig
from ..train.distributed import pick_device
from .datainfo import describe_data
from .experiments import DATA_FIELDS, IMAGE_DATASETS, METRIC, CompareConfig, check_data_files, data_files, entries
from .flops import measure
from .report import write_report
from .study import crossover_sentences, crossovers, mean_std, ranking
from .terms import in_compare_terms

OPTIONS = "compare.json"  # in the report folder: the options it was started with, which --resume continues
FINISHED = "compare_run.json"  # in a run folder: trained to its end and measured (its wall time)


def run_comparison(cfg: CompareConfig, out: str | Path, quiet: bool = False, overwrite: bool = False,
                   resume: bool = False) -> dict:
    """Train and measure every model at every budget and seed; write the report folder ``out``; return
    results.json's content. ``quiet``: show no progress (see xformer/train/progress.py). A folder ``out``
    that holds files is refused unless ``overwrite``: then the old report is moved aside until the new one
    is complete. ``resume``: ``out`` is a stopped compare of ``cfg`` (``resumed_config``); its finished
    runs are read back, not trained again."""
    from ..train.progress import Progress

    out = Path(out)
    check_data_files(cfg)
    _check_out_outside_data(cfg, out)
    resumable = (out / OPTIONS).is_file() and not (out / "results.json").is_file()  # a finished one: no way on
    folder = None if resume else OutputFolder(out, overwrite, "report", marker=OPTIONS, holds_runs=True,
                                              alternative=f"continue a stopped compare with --resume {out}"
                                              if resumable else "", inputs=data_files(cfg))
    schedule, seeds = cfg.schedule(), [cfg.seed + k for k in range(cfg.seeds)]
    n_trained = sum(e.trained for e in entries(cfg))
    results: dict[str, Any] = {
        "config": asdict(cfg), "command": cfg.command(out), "date": time.strftime("%Y-%m-%d %H:%M %z"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} thread{'s' * (torch.get_num_threads() != 1)}, "
                   f"torch {torch.__version__}", "device": _device(cfg.device),
        "versions": {"xformer": __version__, "python": platform.python_version(), "torch": torch.__version__},
        "budgets": [{"steps": s, "seconds": sec} for s, sec in schedule], "seeds": seeds,
        "domains": {d: {"metric": METRIC[d][0], "direction": METRIC[d][1], "split": "test", "models": [],
                        "runs": []} for d in cfg.domains}}
    models, measured, untrained = {}, {}, {}
    datasets = _checked_data(cfg, schedule, seeds, results, resume)  # before anything is written: no folder left
    progress = Progress(n_trained * len(seeds) * sum(s for s, _ in schedule), label="compare", quiet=quiet)
    start = time.perf_counter()
    if folder is not None:
        folder.replace()
        write_atomically(out / OPTIONS, json.dumps(asdict(cfg), indent=1) + "\n")
    try:
        for b, (steps, seconds) in enumerate(schedule):
            for seed in seeds:
                for entry in entries(cfg.at(steps, seconds, seed)):
                    last = b == len(schedule) - 1 and seed == seeds[0]
                    run = _one_run(entry, datasets[entry.domain], out, steps, seconds, seed, cfg.batch_size,
                                   progress, measured, untrained, models if last else None,
                                   results["domains"][entry.domain]["metric"], resume)
                    results["domains"][entry.domain]["runs"].append(run)
        results["total_seconds"] = round(time.perf_counter() - start, 1)
        for domain, info in results["domains"].items():
            aggregate(domain, info, measured, schedule)
        write_report(results, out, models, datasets)
    except BaseException as stop:
        if folder is not None:  # never replaces a complete report; a --resume continues its finished runs, if any
            folder.failed(keep_partial=any(out.rglob(FINISHED)))  # else nothing is kept: the command runs again
        if isinstance(stop, KeyboardInterrupt):  # the trainer's "xformer train --resume RUN" is not the way on
            raise _stopped(stop, out, folder) from stop
        raise
    finally:
        progress.close()
    if folder is not None:
        folder.started()
    return results


def _device(name: str) -> str:
    """The device the runs train on (``auto`` resolved), a GPU with its name."""
    device = pick_device(name, "--device")
    return f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else str(device)


def _stopped(stop: KeyboardInterrupt, out: Path, folder: OutputFolder | None) -> KeyboardInterrupt:
    """What a Ctrl-C left, said as compare's own way on (the exit status of the signal kept)."""
    if folder is not None and folder.replacing:
        message = (f"the compare stopped before its report was complete; {out} holds the earlier report again, "
                   "as it was: run the same command again")
    elif (out / OPTIONS).is_file():
        message = (f"the compare stopped; its finished runs are kept in {out}: continue it with "
                   f"xformer compare --resume {out}")
    else:
        message = "the compare stopped before any of its runs finished, so nothing was kept: run the same command again"
    stopped = KeyboardInterrupt(message)
    stopped.exit_status = getattr(stop, "exit_status", 130)
    return stopped


def _check_out_outside_data(cfg: CompareConfig, out: Path) -> None:
    """The report folder outside a data folder (``--text-data FOLDER``, ``--image-data FOLDER``): each run reads every
    file under it, and would read the runs' own files (a vocabulary, plots) as text or images; train refuses such a
    run folder only once the compare has started."""
    folders = [("--text-data", p) for p in cfg.text_data or [] if Path(p).is_dir()]
    if cfg.image_data is not None and cfg.image_data not in IMAGE_DATASETS:
        folders.append(("--image-data", cfg.image_data))
    for option, folder in folders:
        if out.resolve().is_relative_to(Path(folder).resolve()):
            raise ConfigError(f"--out {out} is inside {option} {folder}, all of whose files each run reads as data, "
                              "the runs' own among them; give a report folder outside it")


def _checked_data(cfg: CompareConfig, schedule: list, seeds: list[int], results: dict, resume: bool = False) -> dict:
    """Each domain's data (described in ``results``), every run's experiment checked: what the command would
    refuse part way (a series too short for the windows, a training split shorter than one batch, a file that is
    no CSV, a bad value) is refused before it writes anything. The datasets are built in the order the runs
    would first need them, each from its own seed, so they are the same as when they were built between the runs."""
    from ..data.registry import build_data

    datasets = {}
    for steps, seconds in schedule:
        for seed in seeds:
            for entry in entries(cfg.at(steps, seconds, seed)):
                experiment = from_dict(ExperimentConfig, copy.deepcopy(entry.experiment))
                if entry.domain in datasets:
                    continue
                try:
                    datasets[entry.domain] = build_data(experiment.data.name, experiment.data.args)
                except ConfigError as error:
                    raise ConfigError(in_compare_terms(str(error), entry.domain, experiment.data.name)) from None
                _check_one_batch(entry.domain, cfg, len(datasets[entry.domain].train),
                                 experiment.train.batch_size, resume)
                info = results["domains"][entry.domain]
                info["data"] = describe_data(entry.domain, cfg, datasets[entry.domain])
                if datasets[entry.domain].test is None:  # e.g. an image folder without test/
                    info["metric"] = info["metric"].replace("test_", "val_", 1)
                    info["split"] = "validation"  # said in the Data table: no test split
    return datasets


def _check_one_batch(domain: str, cfg: CompareConfig, n_train: int, batch_size: int, resume: bool) -> None:
    """The Trainer's refusal of a training split shorter than one batch (its loader drops a partial batch;
    xformer/train/trainer.py), said in compare's options before the first run rather than part way."""
    if n_train >= batch_size:  # whatever grad_accum and process count: len(loader) // grad_accum > 0 exactly then
        return
    field = DATA_FIELDS.get(domain)
    given = getattr(cfg, field) if field else None
    shown = " ".join(map(str, given)) if isinstance(given, list) else given
    source = f" (--{field.replace('_', '-')} {shown})" if given else ""
    fix = (f"start it again with --batch-size {n_train} or less and --overwrite (--resume keeps the options it was "
           "started with)" if resume else f"give --batch-size {n_train} or less")
    raise ConfigError(f"the {domain} domain's training split{source} has {n_train} examples, fewer than one batch "
                      f"of --batch-size {batch_size}; {fix}")


def resumed_config(out: str | Path) -> CompareConfig:
    """The options of the stopped compare in ``out`` (its compare.json), or one line saying why it cannot go on."""
    out = Path(out)
    if not out.is_dir():
        raise ConfigError(f"cannot resume {out}: {'no such folder' if not out.exists() else 'it is a file'} (give "
                          "the --out folder of an xformer compare that was stopped)")
    if not (out / OPTIONS).is_file():
        raise ConfigError(f"cannot resume {out}: it holds no {OPTIONS} (it is not the --out folder of an xformer "
                          "compare that was stopped); start a new compare")
    try:
        cfg, problem = from_dict(CompareConfig, json.loads((out / OPTIONS).read_text(encoding="utf-8"))), None
    except ValueError as error:  # e.g. its GPU gone: what it was started with no longer holds
        cfg, problem = None, error
    if (out / "results.json").is_file():
        again = f": {cfg.command(out)} --overwrite" if cfg is not None else ""
        raise ConfigError(f"{out} holds a finished report (results.json), there is nothing to resume; give a new "
                          f"--out folder, or run it again over the old one{again}")
    if cfg is not None:
        try:
            check_data_files(cfg)  # a file moved since: said before the runs are looked at
        except ConfigError as error:
            problem = error
    if problem is not None:
        raise ConfigError(f"cannot resume {out} with the options it was started with ({out / OPTIONS}): "
                          f"{problem}") from None
    return cfg


def _one_run(entry, data, out: Path, steps: int, seconds: float | None, seed: int, batch_size: int, progress,
             measured: dict, untrained: dict, keep: dict | None, metric: str, resume: bool = False) -> dict:
    """Train (or evaluate, for a model with nothing to train) one model at one budget and seed; with
    ``resume``, a run that a stopped compare finished is read back from its folder."""
    from ..models import build_model
    from ..train.config import with_implied_args
    from ..train.run import load_run_model, train_run

    budget = f"{steps} steps" if seconds is None else f"{steps} steps, {seconds:g} s"
    folder = f"steps{steps}" if seconds is None else f"steps{steps}_{seconds:g}s"
    key = (entry.domain, entry.name)
    if not entry.trained:
        if key not in untrained:  # nothing to train: the same numbers at every budget and seed
            experiment = from_dict(ExperimentConfig, copy.deepcopy(entry.experiment))
            model = build_model(with_implied_args(experiment.model, data.model_args))
            untrained[key] = (model, _evaluate_untrained(model, data))
            measured[key] = measure(entry, model, data)
        model, metrics = untrained[key]
        run = {"steps": 0, "train_seconds": 0.0, "wall_seconds": 0.0, "run_dir": None}
    else:
        run_dir = out / "runs" / entry.domain / _slug(entry.name) / f"{folder}_seed{seed}"
        progress.start(f"{entry.domain}: {entry.name} ({budget}, seed {seed})")
        before, started = progress.n, time.perf_counter()
        if resume and (run_dir / FINISHED).is_file():
            metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
            wall_seconds = json.loads((run_dir / FINISHED).read_text(encoding="utf-8"))["wall_seconds"]
        else:  # a fresh run; when resuming, one stopped part way starts again (its folder replaced)
            experiment = from_dict(ExperimentConfig, copy.deepcopy(entry.experiment))
            metrics = train_run(experiment, run_dir, progress=progress, overwrite=resume)
            wall_seconds = round(time.perf_counter() - started, 2)  # training and its evaluations
            write_atomically(run_dir / FINISHED, json.dumps({"wall_seconds": wall_seconds}) + "\n")
        progress.update(steps - (progress.n - before))  # a run stopped early still fills its share
        model = load_run_model(run_dir)[1]  # the weights its metrics describe (the best on validation)
        if key not in measured:
            measured[key] = measure(entry, model, data)
        run = {"steps": metrics["steps"], "train_seconds": metrics["train_seconds"],
               "wall_seconds": wall_seconds, "run_dir": str(run_dir.relative_to(out))}
    if keep is not None:
        keep[key] = model
    metrics = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    flops = measured[key]["forward_flops"]
    return {"name": entry.name, "kind": entry.kind, "trained": entry.trained, "budget": budget,
            "budget_steps": steps, "budget_seconds": seconds, "seed": seed, **run,
            "train_flops": 3 * flops * batch_size * run["steps"], "metrics": metrics,
            "metric": metrics.get(metric), "experiment": entry.experiment}


def aggregate(domain: str, info: dict, measured: dict, schedule: list) -> None:
    """Mean ± s over the seeds: per model at the largest budget (``models``, the tables) and per model and
    budget (``curves``); the ranking, the ties and the crossovers of the transformer with each baseline."""
    names = list(dict.fromkeys(r["name"] for r in info["runs"]))
    info["curves"], info["models"] = {}, []
    for name in names:
        runs = [r for r in info["runs"] if r["name"] == name]
        curve = []
        for budget in dict.fromkeys(r["budget"] for r in runs):
            group = [r for r in runs if r["budget"] == budget]
            mean, std = mean_std([r["metric"] for r in group]) if all(r["metric"] is not None for r in group) \
                else (None, None)
            curve.append({"budget": budget, "metric": mean, "metric_std": std, "seeds": len(group),
                          "train_flops": sum(r["train_flops"] for r in group) / len(group),
                          "wall_seconds": sum(r["wall_seconds"] for r in group) / len(group)})
        info["curves"][name] = curve
        final = [r for r in runs if r["budget"] == runs[-1]["budget"]]
        first = final[0]
        row = {"name": name, "kind": first["kind"], "run_dir": first["run_dir"], "experiment": first["experiment"],
               "seeds": len(final), "steps": first["steps"]}
        for key in ("train_seconds", "wall_seconds", "train_flops"):
            row[key] = round(sum(r[key] for r in final) / len(final), 2)
        row["examples_per_second"] = (round(first["steps"] * first["experiment"]["train"]["batch_size"]
                                            * len(final) / sum(r["train_seconds"] for r in final), 1)
                                      if first["trained"] else None)
        row.update(measured[domain, name])
        row["tokens_per_step"] = (row["tokens_per_example"] * first["experiment"]["train"]["batch_size"]
                                  if row["tokens_per_example"] else None)
        keys = [k for k in first["metrics"] if all(k in r["metrics"] for r in final)]
        row["metrics"], row["metrics_std"] = {}, {}
        for k in keys:
            row["metrics"][k], row["metrics_std"][k] = mean_std([r["metrics"][k] for r in final])
        row["metric_values"] = [r["metric"] for r in final]
        row["metric"], row["metric_std"] = row["metrics"].get(info["metric"]), row["metrics_std"].get(info["metric"])
        info["models"].append(row)
    info["ranking"] = ranking(info["models"], info["direction"])
    transformer = next((m for m in info["models"] if m["kind"] == "transformer"), None)
    info["crossovers"], info["crossover_sentences"] = {}, []
    if transformer is None or len(schedule) < 2:
        return
    for unit, key in (("flops", "train_flops"), ("seconds", "wall_seconds")):
        t_curve = [(c[key], c["metric"]) for c in info["curves"][transformer["name"]] if c["metric"] is not None]
        found = {}
        for m in info["models"]:
            if m is transformer or m["metric"] is None:
                continue
            if m["steps"]:
                found[m["name"]] = crossovers(t_curve, [(c[key], c["metric"]) for c in info["curves"][m["name"]]
                                                      if c["metric"] is not None],
                                              info["direction"])
            else:
                found[m["name"]] = crossovers(t_curve, None, info["direction"], flat=m["metric"])
        info["crossovers"][unit] = found
        if unit == "flops":
            info["crossover_sentences"] = crossover_sentences(domain, transformer["name"], found)


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


__all__ = ["run_comparison", "resumed_config", "aggregate"]
