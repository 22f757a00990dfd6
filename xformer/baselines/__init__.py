"""The classic models the transformer is compared with, behind the same forward contract.

A baseline is an ``nn.Module`` with ``forward(batch) -> {"prediction", "loss", "loss_weight"}``,
like :class:`xformer.models.Model`, so one trainer and one ``evaluate`` serve both.
"""
from .series import BASELINES, DLinear, LastValue, SeasonalNaive, build_baseline, moving_average

__all__ = ["BASELINES", "DLinear", "LastValue", "SeasonalNaive", "build_baseline", "moving_average"]
