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

Forecasters of different lookbacks (N-BEATS' ensembles mix windows of 2H to 7H; Oreshkin et al. 2020) join
through ``TrailingWindow``: every member is fed the longest member's window and reads its own last steps, so
all of them forecast the same H steps after the same origin.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .batch import FUTURE_COVARIATES, INPUTS, PAST_COVARIATES
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
        models = [member.model if isinstance(member, TrailingWindow) else member for member in self.members]
        levels = [getattr(getattr(model, "head", model), "quantiles", None) for model in models]
        if any(q is None for q in levels) or any(not torch.equal(q, levels[0]) for q in levels[1:]):
            raise ConfigError("the members forecast different quantiles; ensemble runs trained with the same "
                              "model.head.args.quantiles")
        return levels[0]


class TrailingWindow(nn.Module):
    """A forecaster trained on windows of ``input_len`` steps, given a batch of a longer window of L steps before
    the same origin: it reads inputs[:, L - input_len:] and past covariates alike, and the last input_len + H
    rows of the future covariates (L + H rows, the window's and the horizon's). The origin and the H steps
    forecast stay those of the batch, so members of different lookbacks can be averaged (``Ensemble``)."""

    def __init__(self, model: nn.Module, input_len: int):
        super().__init__()
        self.model, self.input_len = model, int(input_len)

    def forward(self, batch: dict) -> dict:
        window = batch[INPUTS].shape[1]
        if window < self.input_len:
            raise ConfigError(f"a member of the ensemble reads {self.input_len} steps and the data's windows hold "
                              f"{window}; give the data the longest member's data.args.input_len")
        cut = window - self.input_len
        batch = {**batch, INPUTS: batch[INPUTS][:, cut:]}
        for key in (PAST_COVARIATES, FUTURE_COVARIATES):
            if key in batch:
                batch[key] = batch[key][:, cut:]
        return self.model(batch)


def ensemble_of_windows(models: list[nn.Module], windows: list[int | None]) -> Ensemble:
    """The ``Ensemble`` (in eval mode) of ``models``, each in a ``TrailingWindow`` of its own lookback when the
    lookbacks ``windows`` differ (one per model)."""
    if len(set(windows)) > 1:
        models = [TrailingWindow(model, window) for model, window in zip(models, windows)]
    return Ensemble(models).eval()


__all__ = ["Ensemble", "TrailingWindow", "ensemble_of_windows"]
