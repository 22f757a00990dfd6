"""Several run folders of one task as one model: ``Ensemble`` (xformer/ensemble.py) of their weights, after checking
that they read the same data the same way (``check_same_data``).

    xformer evaluate RUN RUN RUN            evaluate_ensemble (load_ensemble: the first run's data, every run's model)
    xformer predict RUN IMAGES --ensemble RUN RUN     load_ensemble_model: the models only
    Forecaster.load([PATH, PATH])           xformer/forecast/folder.py: forecasters of one frame
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..config import ConfigError, load_yaml
from ..data.registry import DataBundle
from ..ensemble import Ensemble
from ..folders import not_a_run_folder
from .config import ExperimentConfig
from .resume import absolute_data_paths
from .run import evaluate_model, load_run, load_run_model


# what a run folder holds that turns raw data into the model's inputs and its outputs into labels: members of an
# ensemble must hold the same (one scaler, one vocabulary, one class order)
DATA_ARTIFACTS = ("classes.json", "series_scaler.json", "preprocess.json", "tokenizer")


# data arguments that change only how training batches are augmented, never the validation and test images
TRAINING_ONLY = ("mixup", "cutmix", "label_smoothing", "hflip", "crop_scale", "auto_augment", "random_erasing",
                 "affine")


def check_same_data(first: Path, other: Path) -> None:
    """Runs whose outputs are averaged must read the same data the same way and answer the same question:
    the same data section and head in config.yaml, and identical scaler, vocabulary and class files."""
    if not (Path(other) / "config.yaml").is_file():
        raise ConfigError(f"{not_a_run_folder(other)}; give --out folders of xformer train")
    ours, theirs = load_yaml(Path(first) / "config.yaml"), load_yaml(Path(other) / "config.yaml")
    # the vocabulary's path aside: where it came from does not matter, its files are compared below; and the
    # augmentation of training batches aside: a CCT trained with MixUp and a CNN without read the same splits.
    # Runs record their data paths absolute; one recorded relative (before that) is taken from the current directory
    a, b = ({"name": (run.get("data") or {}).get("name"),
             **absolute_data_paths((run.get("data") or {}).get("args") or {}),
             "tokenizer": None, **dict.fromkeys(TRAINING_ONLY)} for run in (ours, theirs))
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
    for name in DATA_ARTIFACTS:
        a, b = Path(first) / name, Path(other) / name
        if name == "tokenizer" and not _same_files(a, b):
            # WordPiece training orders tied tokens differently from run to run: one batch of ids cannot feed both
            raise ConfigError(f"{b} is another vocabulary than {a}; train the runs of an ensemble on one vocabulary: "
                              f"xformer train RECIPE data.args.tokenizer={a} ...")
        if not _same_files(a, b):
            raise ConfigError(f"{b} differs from {a}: the runs read their data differently (another scaler, class "
                              "order or preprocessing); ensemble runs trained on the same data")


def _same_files(a: Path, b: Path) -> bool:
    if a.is_dir() or b.is_dir():
        names = sorted(p.name for p in a.iterdir()) if a.is_dir() else None
        return a.is_dir() and b.is_dir() and names == sorted(p.name for p in b.iterdir()) and \
            all(_same_files(a / n, b / n) for n in names)
    return a.exists() == b.exists() and (not a.exists() or a.read_bytes() == b.read_bytes())


def checked_runs(run_dirs: list[str | Path]) -> list[Path]:
    """The run folders, each checked against the first (``check_same_data``) before any is loaded."""
    first, *others = [Path(r) for r in run_dirs]
    for other in others:
        check_same_data(first, other)
    return [first, *others]


def load_ensemble(run_dirs: list[str | Path], checkpoint: str = "best", data_overrides: list[str] = ()
                  ) -> tuple[ExperimentConfig, torch.nn.Module, DataBundle]:
    """``load_run`` of the first run (its config and data) and an ``Ensemble`` of every run's model, each with
    the weights ``checkpoint`` names; one run gives its own model. The runs must share data and head
    (``check_same_data``): seeds of one recipe, or different models of one task."""
    first, *others = checked_runs(run_dirs)
    config, model, data = load_run(first, checkpoint, data_overrides)
    return config, with_members(model, others, checkpoint), data


def load_ensemble_model(run_dirs: list[str | Path], checkpoint: str = "best") -> tuple[ExperimentConfig, torch.nn.Module]:
    """``load_run_model`` of one run, or the first run's config and the ``Ensemble`` of every run's model,
    without building the data."""
    first, *others = checked_runs(run_dirs)
    config, model = load_run_model(first, checkpoint)
    return config, with_members(model, others, checkpoint)


def with_members(model: torch.nn.Module, others: list[Path], checkpoint: str) -> torch.nn.Module:
    """``model`` alone, or the ``Ensemble`` (in eval mode) of it and the models of the runs ``others``."""
    if not others:
        return model
    return Ensemble([model] + [load_run_model(other, checkpoint)[1] for other in others]).eval()


def evaluate_ensemble(run_dirs: list[str | Path], checkpoint: str = "best", data_overrides: list[str] = ()
                      ) -> dict[str, float]:
    """``evaluate_run`` of one run, or of the ensemble of several: their forecasts (each quantile too) or class
    probabilities averaged, scored on the first run's validation and test splits (or ``data_overrides``')."""
    return evaluate_model(*load_ensemble(run_dirs, checkpoint, data_overrides))


__all__ = ["DATA_ARTIFACTS", "check_same_data", "checked_runs", "with_members", "load_ensemble", "load_ensemble_model", "evaluate_ensemble"]
