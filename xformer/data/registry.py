"""How a dataset plugs into training: a named factory that returns a DataBundle.

    @register_data("digits")
    def digits(batch_size_hint: int = 0, seed: int = 0) -> DataBundle: ...

A recipe names it (``data: {name: digits, args: {...}}``); the trainer builds
loaders from the bundle, fills the model config's missing tokenizer/head
arguments from ``model_args`` (e.g. the vocabulary size the data implies) and
calls ``evaluate`` for the domain's metrics.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ..registry import Registry, call_factory, import_all_submodules

DATASETS = Registry("data")


@dataclass
class DataBundle:
    """Splits of map-style datasets whose items are dicts of tensors (or numbers).

    collate: turns a list of items into a batch dict (default: torch's default_collate).
    model_args: {"tokenizer": {...}, "head": {...}} arguments the data implies
        (vocab_size, n_classes, n_channels, horizon...); a recipe's own values win.
    evaluate: (model, batches) -> {"accuracy": ..., "mse": ...}: the domain's metrics on
        one split, unprefixed; the trainer adds the split name ("test_accuracy") and
        always reports the mean loss itself.
    loss_metrics: (split, mean_loss) -> {"perplexity": ...}: metrics that follow from the
        trainer's mean loss alone, so the split is not run through the model twice.
    save: writes what is needed to use the model on new raw data (a vocabulary,
        scaler statistics) into the run folder.
    report: (model, batches, run_dir, split) -> dict: a closer look at one split written into
        the run folder (classification: ``{split}_classification.json`` with per-class accuracy
        and the confusion matrix, ``{split}_confusion_matrix.png``). ``train_run`` calls it once
        after training, on the test split (val when there is none), with the best checkpoint
        loaded; ``xformer evaluate`` does not (it writes nothing).
    """

    train: Dataset
    val: Dataset | None = None
    test: Dataset | None = None
    collate: Callable[[list], dict] | None = None
    model_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    evaluate: Callable[[Any, Iterable[dict]], dict[str, float]] | None = None
    loss_metrics: Callable[[str, float], dict[str, float]] | None = None
    save: Callable[[Path], None] | None = None
    report: Callable[[Any, Iterable[dict], Path, str], dict] | None = None


def register_data(name: str):
    return DATASETS.register(name)


def build_data(name: str, args: dict | None = None) -> DataBundle:
    import_all_submodules(__package__)
    return call_factory(DATASETS.lookup(name), args or {}, "data", name)
