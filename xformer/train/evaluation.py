"""One evaluation of a split: the target-weighted mean loss and the data's own metrics, from one reading of it.

    loss = sum_b w_b L_b / sum_b w_b      (L_b the head's mean loss over batch b's w_b targets)

Each batch is read (an image decoded, a window cut) once: its loss is added, then the data's ``evaluate`` sees it.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch

from ..data.registry import DataBundle


def evaluate_batches(engine: torch.nn.Module, model: torch.nn.Module, data: DataBundle, split: str,
                     batches: Iterable[dict], device: torch.device) -> dict[str, float]:
    """``{"loss", **data.loss_metrics(split, loss), **data.evaluate(model, batches)}``; ``engine`` computes the
    loss (the model as training wraps it), ``model`` the metrics (unwrapped, as ``evaluate`` expects it)."""
    totals = torch.zeros(2, device=device)

    def scored():
        for batch in batches:
            batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
            out = engine(batch)
            weight = torch.as_tensor(out["loss_weight"], device=device).float()
            totals.add_(torch.stack([out["loss"].float() * weight, weight]))
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


__all__ = ["evaluate_batches"]
