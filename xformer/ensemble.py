"""An ensemble: several trained models of one task, their outputs averaged.

Seed ensembles are the cheapest reliable gain in forecasting (N-BEATS averages 180 models; Oreshkin et al.
2020) and in classification (Lakshminarayanan et al. 2017): the members make partly independent errors,
and averaging cannot do worse than the members do on average. For the squared error, with member
forecasts f_1..f_M and their mean f_bar (convexity of the square, Krogh & Vedelsby 1995):

    (y - f_bar)^2 = 1/M sum_m (y - f_m)^2 - 1/M sum_m (f_m - f_bar)^2

so the ensemble's MSE is the members' mean MSE minus their spread around each other.

What is averaged, per output of the members' common contract (``forecast_output``, ``classification_output``):

- forecasts: the point forecasts, y_hat = 1/M sum_m y_hat_m; with quantiles, each quantile level on its own
  (Vincentization: the average of the members' q-quantiles is the ensemble's q-quantile, Lichtendahl et al.
  2013), then the forecasting contract (sorted quantiles, the median as the point forecast, MSE or pinball loss);
- class scores: the probabilities, p = 1/M sum_m softmax(z_m), returned as logits log p (softmax(log p) = p,
  so accuracy, top-k and predict read them as any classifier's); the loss is the cross-entropy of p
  itself, without the members' label smoothing (the ensemble's own likelihood).

Language models (per-token logits) are not averaged here: sampling from an ensemble is another tool.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .errors import ConfigError
from .heads.classification import classification_output
from .heads.forecasting import forecast_output


class Ensemble(nn.Module):
    """out = average of ``members``' outputs on the same batch (see the module's docstring for what is averaged)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        if len(members) < 2:
            raise ConfigError(f"an ensemble needs at least 2 models, got {len(members)}")
        self.members = nn.ModuleList(members)

    def forward(self, batch: dict) -> dict:
        outs = [member(batch) for member in self.members]
        kinds = {"logits" if "logits" in out else "quantiles" if "quantiles" in out else "prediction" for out in outs}
        if len(kinds) > 1:
            raise ConfigError(f"the members give different outputs ({', '.join(sorted(kinds))}); ensemble runs of "
                              "one task, all trained with the same model.head.args.quantiles (or all without)")
        if "logits" in kinds:
            logits = torch.stack([out["logits"] for out in outs]).float()
            if logits.dim() != 3:
                raise ConfigError("an ensemble averages class scores (batch, classes); these models give per-token "
                                  f"logits of shape {tuple(logits.shape[1:])} (language models)")
            probs = logits.softmax(dim=-1).mean(dim=0)
            return classification_output(probs.clamp_min(torch.finfo(probs.dtype).tiny).log(), batch)
        if "quantiles" in kinds:
            return forecast_output(torch.stack([out["quantiles"] for out in outs]).mean(dim=0), batch,
                                   self._quantiles())
        return forecast_output(torch.stack([out["prediction"] for out in outs]).mean(dim=0), batch)

    def _quantiles(self) -> Tensor:
        """The members' common quantile levels (their heads' ``quantiles`` buffers)."""
        levels = [getattr(getattr(member, "head", member), "quantiles", None) for member in self.members]
        if any(q is None for q in levels) or any(not torch.equal(q, levels[0]) for q in levels[1:]):
            raise ConfigError("the members forecast different quantiles; ensemble runs trained with the same "
                              "model.head.args.quantiles")
        return levels[0]


__all__ = ["Ensemble"]
