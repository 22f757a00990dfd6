"""The classic models the transformer is compared with, behind the same forward contract.

A baseline is an ``nn.Module`` whose ``forward(batch)`` returns what the transformer's head returns
for the same data (``logits`` for language models and classifiers, ``prediction`` for forecasters,
plus ``loss`` and ``loss_weight``), so one trainer and one ``evaluate`` serve both. Each module
registers its baselines with :func:`xformer.models.register_baseline`:

    series.py                 last_value, seasonal_naive, dlinear, rlinear, sparsetsf
    recurrent_series.py       lstm_forecaster
    series_classification.py  fcn, resnet1d
    images.py                 mlp, cnn
    text.py                   ngram_lm, rnn_lm, lstm_lm, lstm_seq2seq

A recipe names one as

    model:
      baseline: {name: dlinear, args: {kernel_size: 25}}   # the data fills n_channels, input_len, horizon
"""
from torch import nn

from ..models import BASELINES, PartConfig, build_part, import_parts
from .series import DLinear, LastValue, RLinear, SeasonalNaive, SparseTSF, moving_average


def build_baseline(name: str, **args) -> nn.Module:
    """The baseline registered as ``name`` built with keyword ``args``; a wrong name or key is a one-line
    ConfigError, e.g. ``build_baseline("dlinear", n_channels=7, input_len=336, horizon=96)``."""
    import_parts()
    return build_part(BASELINES, "baseline", PartConfig(name, args))


__all__ = ["BASELINES", "DLinear", "LastValue", "RLinear", "SeasonalNaive", "SparseTSF", "build_baseline", "moving_average"]
