"""What a forecasting run reports: the errors of its forecasts over every window, channel and step (per horizon
step too), and the run folder's ``{split}_forecast_errors.json`` / ``{split}_errors_per_step.png``."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..batch import TARGETS


def _device(model: torch.nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def forecast_errors(model, batches, scaler=None) -> dict:
    """MSE / MAE over every window, channel and step; per horizon step too; on the original scale with ``scaler``.

    MSE = 1/(W H C) sum (y - y_hat)^2, MAE = 1/(W H C) sum |y - y_hat|.
    Returns floats ``mse``, ``mae`` (and ``mse_original``, ``mae_original``) and
    lists ``mse_per_step``, ``mae_per_step`` of length H.
    """
    was_training = model.training
    model.eval()
    device, sums, count = _device(model), {}, 0
    for batch in batches:
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        y_hat, y = model(batch)["prediction"].double(), batch[TARGETS].double()
        errors = {"mse": (y - y_hat) ** 2, "mae": (y - y_hat).abs()}
        if scaler is not None:
            scale = torch.as_tensor(scaler.scale_, dtype=torch.float64, device=device)
            errors["mse_original"], errors["mae_original"] = errors["mse"] * scale ** 2, errors["mae"] * scale
        for name, e in errors.items():
            sums[name] = sums.get(name, 0.0) + e.sum(dim=(0, 2))  # (H,)
        count += y.shape[0] * y.shape[2]
    model.train(was_training)
    out = {name: float(s.sum() / (count * len(s))) for name, s in sums.items()}
    for name in ("mse", "mae"):
        out[f"{name}_per_step"] = (sums[name] / count).tolist()
    return out


def save_forecast_report(run_dir: str | Path, errors: dict, split: str = "test") -> dict:
    """``{split}_forecast_errors.json`` (the errors of :func:`forecast_errors`, per horizon step too) and
    ``{split}_errors_per_step.png`` (MSE and MAE against the step ahead, standardised scale)."""
    from matplotlib.figure import Figure  # not pyplot: the caller's backend and open figures stay as they are

    run_dir = Path(run_dir)
    (run_dir / f"{split}_forecast_errors.json").write_text(json.dumps(errors, indent=1), encoding="utf-8")
    steps = np.arange(1, len(errors["mse_per_step"]) + 1)
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    ax.plot(steps, errors["mse_per_step"], label=f"MSE (mean {errors['mse']:.4f})")
    ax.plot(steps, errors["mae_per_step"], label=f"MAE (mean {errors['mae']:.4f})")
    ax.set_xlabel("steps ahead")
    ax.set_ylabel("error (standardised)")
    ax.set_title(f"{split} split: error per horizon step")
    ax.legend()
    fig.tight_layout()
    fig.savefig(run_dir / f"{split}_errors_per_step.png", dpi=100)
    return errors


__all__ = ["forecast_errors", "save_forecast_report"]
