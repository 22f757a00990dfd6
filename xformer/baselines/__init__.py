"""The classic models the transformer is compared with, behind the same forward contract.

A baseline is an ``nn.Module`` with ``forward(batch) -> {"prediction", "loss", "loss_weight"}``,
like :class:`xformer.models.Model`, so one trainer and one ``evaluate`` serve both. Each module
registers its baselines with :func:`xformer.models.register_baseline`; a recipe names one as

    model:
      baseline: {name: dlinear, args: {kernel_size: 25}}   # the data fills n_channels, input_len, horizon
"""
from torch import nn

from ..models import BASELINES, PartConfig, _call_factory, _import_domains
from .series import DLinear, LastValue, SeasonalNaive, moving_average


def build_baseline(name: str, **args) -> nn.Module:
    """The baseline registered as ``name`` built with keyword ``args``; a wrong name or key is a one-line
    ConfigError, e.g. ``build_baseline("dlinear", n_channels=7, input_len=336, horizon=96)``."""
    _import_domains()
    return _call_factory(BASELINES, "baseline", PartConfig(name, args))


__all__ = ["BASELINES", "DLinear", "LastValue", "SeasonalNaive", "build_baseline", "moving_average"]
