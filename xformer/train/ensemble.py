"""Several run folders of one task as one model: ``Ensemble`` (xformer/ensemble.py) of their weights, after checking
that they read the same data the same way (``check_same_data``).

    xformer evaluate RUN RUN RUN            evaluate_ensemble (load_ensemble: the first run's data, every run's model)
    xformer predict RUN IMAGES --ensemble RUN RUN     load_ensemble_model: the models only
    Forecaster.load([PATH, PATH])           xformer/forecast/folder.py: forecasters of one frame

Forecasting runs may differ in their lookback (data.args.input_len) and nothing else of their data: the ensemble
reads the longest member's data and windows, and each shorter member its last steps (``TrailingWindow``). The
validation and test windows of csv_series / ett forecast the same steps whatever the lookback (each split's
windows start input_len rows before its border), so the ensemble is scored on the members' own windows.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..config import ConfigError, load_yaml
from ..data.registry import DataBundle
from ..ensemble import ensemble_of_windows
from ..folders import not_a_run_folder
from .config import ExperimentConfig
from .run import evaluate_model, load_run, load_run_model
from .same_data import TRAINING_ONLY, effective_data, preprocess_difference, run_preprocess, run_record


# what a run folder holds that turns raw data into the model's inputs and its outputs into labels: members of an
# ensemble must hold the same (one scaler, one vocabulary, one class order)
DATA_ARTIFACTS = ("classes.json", "series_scaler.json", "preprocess.json", "tokenizer")


def check_same_data(first: Path, other: Path) -> None:
    """Runs whose outputs are averaged must read the same data the same way and answer the same question:
    the same data in effect (``effective_data``: a CCT trained with MixUp and a CNN without, a recipe that
    spells out a default and one that leaves it out, read the same splits), the same head, the same
    preprocessing of images (preprocess.json, or what an older run's config implies) and identical scaler,
    vocabulary and class files."""
    if not (Path(other) / "config.yaml").is_file():
        raise ConfigError(f"{not_a_run_folder(other)}; give --out folders of xformer train")
    ours, theirs = load_yaml(Path(first) / "config.yaml"), load_yaml(Path(other) / "config.yaml")
    specs = [run_preprocess(run) for run in (first, other)]
    # Runs record their data paths absolute; one recorded relative (before that) is taken from the current directory
    # and forecasters' lookbacks aside: a member of a shorter one reads the last steps of the longest's windows
    lookbacks = dict.fromkeys(["input_len"] if None not in (lookback(first), lookback(other)) else [])
    a, b = ({**effective_data(run, preprocessed=None not in specs), **lookbacks} for run in (first, other))
    if a != b:
        differ = ", ".join(f"{key} {a.get(key)} vs {b.get(key)}" for key in sorted(set(a) | set(b), key=str)
                           if a.get(key) != b.get(key))
        raise ConfigError(f"{other} was trained on other data than {first} (data: {differ}); an ensemble averages "
                          "runs of one data set, windows and splits")
    heads = [(run.get("model") or {}).get("head") or {} for run in (ours, theirs)]
    if not any((run.get("model") or {}).get("baseline") for run in (ours, theirs)):  # a CNN or DLinear may join
        a, b = ((head.get("name"), (head.get("args") or {}).get("quantiles")) for head in heads)
        if a != b:
            raise ConfigError(f"{other} has model.head {b[0]} with quantiles {b[1]}, {first} has {a[0]} with "
                              f"quantiles {a[1]}; ensemble runs with the same head and quantiles")
    if None not in specs and preprocess_difference(*specs):
        shown = ", ".join(f"{field} {specs[0].get(field)} vs {specs[1].get(field)}"
                          for field in preprocess_difference(*specs))
        raise ConfigError(f"{other} reads its images otherwise than {first} ({shown}); an ensemble averages runs "
                          "that see the same images: train them at one data.args.image_size, channels, mean and std")
    for name in DATA_ARTIFACTS:
        if name == "preprocess.json" and None not in specs:  # compared above, numbers within float rounding
            continue
        a, b = Path(first) / name, Path(other) / name
        if name == "classes.json" and a.is_file() and b.is_file() and not _same_files(a, b):
            names = [run_record(path, "class_names", list) for path in (a, b)]
            raise ConfigError(f"{other} classifies into {names[1]}, {first} into {names[0]} ({name}); an ensemble "
                              "averages runs of one set of classes in one order: train them on one image folder")
        if name == "tokenizer" and not _same_files(a, b):
            # WordPiece training orders tied tokens differently from run to run: one batch of ids cannot feed both
            raise ConfigError(f"{b} is another vocabulary than {a}; train the runs of an ensemble on one vocabulary: "
                              f"xformer train RECIPE data.args.tokenizer={a} ...")
        if not (_same_scaling(a, b) if lookbacks and name == "series_scaler.json" else _same_files(a, b)):
            raise ConfigError(f"{b} differs from {a}: the runs read their data differently (another scaler, class "
                              "order or preprocessing); ensemble runs trained on the same data")


def _same_files(a: Path, b: Path) -> bool:
    if a.is_dir() or b.is_dir():
        names = sorted(p.name for p in a.iterdir()) if a.is_dir() else None
        return a.is_dir() and b.is_dir() and names == sorted(p.name for p in b.iterdir()) and \
            all(_same_files(a / n, b / n) for n in names)
    return a.exists() == b.exists() and (not a.exists() or a.read_bytes() == b.read_bytes())


def lookback(run: Path) -> int | None:
    """The input window of a forecasting run (its series_scaler.json), None for any other run."""
    stats = Path(run) / "series_scaler.json"
    if not stats.is_file():
        return None
    stats = run_record(stats)
    window = stats.get("input_len")  # a hand edit to another type is refused by the checks of the run's data
    return window if "horizon" in stats and isinstance(window, int) and not isinstance(window, bool) else None


def _same_scaling(a: Path, b: Path) -> bool:
    """Two forecasting runs' series_scaler.json agree but for their input_len (and the validation end, which runs
    older than its record lack); the freq of their data is compared where both record it (older runs do not)."""
    a, b = ({k: v for k, v in run_record(path).items()
             if k not in ("input_len", "validation_end")} for path in (a, b))
    if "freq" not in a or "freq" not in b:
        a.pop("freq", None), b.pop("freq", None)
    return a == b


# one run folder, or a list of them: a folder alone is one run, not a sequence of letters
RunFolders = str | os.PathLike | list[str | os.PathLike]


def checked_runs(run_dirs: RunFolders) -> list[Path]:
    """The run folders, each checked against the first (``check_same_data``) before any is loaded."""
    runs = [Path(run_dirs)] if isinstance(run_dirs, (str, os.PathLike)) else [Path(r) for r in run_dirs]
    if not runs:
        raise ConfigError("no run folder given; give a run folder (the --out of xformer train) or a list of them")
    first, *others = runs
    for other in others:
        check_same_data(first, other)
    return [first, *others]


def load_ensemble(run_dirs: RunFolders, checkpoint: str = "best", data_overrides: list[str] = ()
                  ) -> tuple[ExperimentConfig, torch.nn.Module, DataBundle]:
    """``load_run`` of the first run (its config and data; the longest lookback's among forecasters) and an
    ``Ensemble`` of every run's model, each with the weights ``checkpoint`` names; one run gives its own model.
    The runs must share data and head (``check_same_data``): seeds of one recipe, or different models of one task."""
    runs = checked_runs(run_dirs)
    source = data_run(runs)
    config, model, data = load_run(source, checkpoint, data_overrides)
    return config, combined(runs, source, model, checkpoint), data


def load_ensemble_model(run_dirs: RunFolders, checkpoint: str = "best") -> tuple[ExperimentConfig, torch.nn.Module]:
    """``load_run_model`` of one run, or the config of the run ``data_run`` names and the ``Ensemble`` of every
    run's model, without building the data."""
    runs = checked_runs(run_dirs)
    source = data_run(runs)
    config, model = load_run_model(source, checkpoint)
    return config, combined(runs, source, model, checkpoint)


def data_run(runs: list[Path]) -> Path:
    """The run whose data (and config) an ensemble uses: the first, or among forecasters of different
    lookbacks the first of the longest."""
    windows = [lookback(run) or 0 for run in runs]
    return runs[windows.index(max(windows))]


def combined(runs: list[Path], source: Path, model: torch.nn.Module, checkpoint: str) -> torch.nn.Module:
    """``model`` (that of the run ``source``) alone, or the ``Ensemble`` of it and every other run's model, each
    with the weights ``checkpoint`` names (``ensemble_of_windows``: members of other lookbacks read their own)."""
    if len(runs) == 1:
        return model
    models = [model if run == source else load_run_model(run, checkpoint)[1] for run in runs]
    return ensemble_of_windows(models, [lookback(run) for run in runs])


def evaluate_ensemble(run_dirs: RunFolders, checkpoint: str = "best", data_overrides: list[str] = ()
                      ) -> dict[str, float]:
    """``evaluate_run`` of one run, or of the ensemble of several: their forecasts (each quantile too) or class
    probabilities averaged, scored on the first run's validation and test splits (the longest lookback's among
    forecasters: ``data_run``), or on ``data_overrides``'."""
    return evaluate_model(*load_ensemble(run_dirs, checkpoint, data_overrides))


__all__ = ["DATA_ARTIFACTS", "TRAINING_ONLY", "check_same_data", "lookback", "checked_runs", "data_run", "combined",
           "load_ensemble", "load_ensemble_model", "evaluate_ensemble"]
