"""One evaluation of a split: the target-weighted mean loss and the data's own metrics, from one reading of it.

    loss = sum_b w_b L_b / sum_b w_b      (L_b the head's mean loss over batch b's w_b targets)

Each batch is read (an image decoded, a window cut) once: its loss is added, then the data's ``evaluate`` sees it.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

import torch

from ..batch import LABELS
from ..config import to_dict
from ..data.registry import DataBundle
from ..errors import ConfigError
from ..heads.lm import IGNORE_INDEX
from .distill import n_classes as named_classes


def classes_of(model: torch.nn.Module, recipe: dict | None = None) -> int | None:
    """How many classes a classifier predicts: its config's (a model of ``build_model``), else its recipe's, else
    its own ``n_classes`` (a classifier baseline's, built in Python with no recipe); None for any other model."""
    config = getattr(model, "config", None)
    model_section = to_dict(config) if dataclasses.is_dataclass(config) else (recipe or {}).get("model") or {}
    named = named_classes(model_section)
    return named if named is not None else getattr(model, "n_classes", None)


def dict_batch(batch, split: str, n_classes: int | None = None):
    """``batch``, once it is known to be a dict: a loader of tuples (a ``TensorDataset``'s) is refused in one line
    (it was an AttributeError inside the training loop), and so is a class label outside 0 .. ``n_classes`` - 1
    (an IndexError in cross_entropy on a CPU, a device-side assert on a GPU). The labels are looked at while still
    on the host, before the batch is copied to the device: no GPU work is waited for."""
    if not isinstance(batch, Mapping):
        raise ConfigError(f"the {split} data gives batches of {type(batch).__name__}, not dicts; give items (or a "
                          "DataBundle collate) that are dicts keyed as the model reads them, e.g. {'images': x, "
                          "'labels': y} (xformer/batch.py lists the keys of each task)")
    labels = batch.get(LABELS)
    if n_classes is not None and torch.is_tensor(labels) and labels.dim() == 1 and labels.device.type == "cpu" \
            and not labels.is_floating_point() and labels.numel():
        low, high = torch.aminmax(labels)
        if low < 0 or high >= n_classes:
            wrong = labels[(labels >= n_classes) | ((labels < 0) & (labels != IGNORE_INDEX))]
            if wrong.numel():
                raise ConfigError(f"the {split} data gives label {int(wrong[0])}, but the model predicts {n_classes} "
                                  f"classes (labels 0 to {n_classes - 1}); give each example the number of its class "
                                  "below that, or a model of more classes (head.args.n_classes)")
    return batch


def split_of(data: DataBundle, split: str):
    """``data``'s dataset of ``split``; a split the data lacks, or a name that is none, is refused in one line naming
    the splits it has (they were a TypeError on None and an AttributeError)."""
    held = [name for name in ("train", "val", "test") if getattr(data, name) is not None]
    if split not in ("train", "val", "test"):
        raise ConfigError(f"no split {split!r}; evaluate one of: {', '.join(held)}")
    if getattr(data, split) is None:
        raise ConfigError(f"the data has no {split!r} split; give DataBundle({split}=...) or evaluate one of: "
                          f"{', '.join(held)}")
    return getattr(data, split)


def loss_of(out: dict, batch: Mapping) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's (loss, loss_weight); a batch without targets, on which a head returns no loss, is refused in
    one line naming the batch's keys (it was a KeyError 'loss_weight')."""
    if "loss" not in out:
        raise ConfigError(f"the model returned no loss on a batch of {', '.join(map(repr, batch))}; give its targets "
                          "('labels' or 'targets': xformer/batch.py lists the keys of each task)")
    return out["loss"], out["loss_weight"]


def evaluate_batches(engine: torch.nn.Module, model: torch.nn.Module, data: DataBundle, split: str,
                     batches: Iterable[dict], device: torch.device) -> dict[str, float]:
    """``{"loss", **data.loss_metrics(split, loss), **data.evaluate(model, batches)}``; ``engine`` computes the
    loss (the model as training wraps it), ``model`` the metrics (unwrapped, as ``evaluate`` expects it)."""
    totals, n_classes = torch.zeros(2, device=device), classes_of(model)

    def scored():
        for batch in batches:
            batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v
                     for k, v in dict_batch(batch, split, n_classes).items()}
            loss, weight = loss_of(engine(batch), batch)
            weight = torch.as_tensor(weight, device=device).float()
            totals.add_(torch.stack([loss.float() * weight, weight]))
            yield batch

    read = scored()
    metrics = {}
    if data.evaluate is not None:
        metrics = data.evaluate(model, read)
        # the second reading of the split that this one replaces drew its DataLoader's seed from torch's
        # generator: drawn here too, so that training goes on after an evaluation as it did before (runs recorded
        # in benchmarks/ reproduce to the bit)
        torch.empty((), dtype=torch.int64).random_()
    for _ in read:  # the loss covers every batch, whatever the metrics read
        pass
    loss = (totals[0] / totals[1]).item()
    if data.loss_metrics is not None:
        metrics = {**data.loss_metrics(split, loss), **metrics}
    return {"loss": loss, **metrics}


__all__ = ["classes_of", "dict_batch", "split_of", "loss_of", "evaluate_batches"]
