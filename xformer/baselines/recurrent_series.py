"""A recurrent forecasting baseline: an LSTM over the input window, then a direct multi-step linear map.

Same forward contract as :mod:`xformer.baselines.series` (DLinear):
``forward(batch) -> {"prediction": (B, H, C), "loss", "loss_weight"}`` (the loss only when the
batch has ``targets``), reading ``inputs`` (B, L, C). Build it by name:

    model = build_baseline("lstm_forecaster", n_channels=7, input_len=336, horizon=96, hidden_dim=64)

``n_channels``, ``input_len`` and ``horizon`` are the arguments a series ``DataBundle.model_args``
provides (a recipe names it as ``model: {baseline: {name: lstm_forecaster, args: {hidden_dim: 64}}}``).
"""
from __future__ import annotations

from torch import Tensor, nn

from ..batch import INPUTS, batch_input
from ..core import Dropout
from ..heads.forecasting import forecast_output
from ..registry import register_baseline
from ..tokenizers.series import RevIN, check_window


class LSTMForecaster(nn.Module):
    """RevIN -> LSTM over the L steps -> linear map of the last hidden state to all H*C future values.

    With x (B, L, C) and, with ``revin``, x' = RevIN(x) (per window and channel: (x - mu) / sigma):

        i_t = sigmoid(W_i x'_t + U_i h_{t-1} + b_i)        input gate
        f_t = sigmoid(W_f x'_t + U_f h_{t-1} + b_f)        forget gate
        g_t = tanh(W_g x'_t + U_g h_{t-1} + b_g)           candidate cell
        o_t = sigmoid(W_o x'_t + U_o h_{t-1} + b_o)        output gate
        c_t = f_t * c_{t-1} + i_t * g_t,   h_t = o_t * tanh(c_t),   t = 1..L,  h_0 = c_0 = 0

    the input of step t being the C-vector x'_t (all channels together); ``n_layers`` stacked layers,
    each reading the h_t of the one below (dropout between them). The forecast is direct, not
    autoregressive: one linear map of the top layer's last state,

        y' = reshape(W Dropout(h_L) + b, (H, C)),   W: (H*C, hidden_dim)

    then RevIN undone, y = y' * sigma + mu. So adding a constant to a channel of the window adds it to
    that channel's forecast, and scaling a channel by a > 0 scales its forecast (up to eps in sigma).
    """

    def __init__(self, n_channels: int, input_len: int, horizon: int, hidden_dim: int = 64, n_layers: int = 1,
                 dropout: float = 0.0, revin: bool = True, affine: bool = False, subtract_last: bool = False):
        super().__init__()
        if min(n_channels, input_len, horizon, hidden_dim, n_layers) < 1:
            raise ValueError(f"n_channels, input_len, horizon, hidden_dim and n_layers must be >= 1, got "
                             f"{n_channels}, {input_len}, {horizon}, {hidden_dim}, {n_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.n_channels, self.input_len, self.horizon = n_channels, input_len, horizon
        self.revin = RevIN(n_channels, affine, subtract_last) if revin else None
        self.lstm = nn.LSTM(n_channels, hidden_dim, n_layers, batch_first=True,
                            dropout=dropout if n_layers > 1 else 0.0)
        self.drop = Dropout(dropout)
        self.proj = nn.Linear(hidden_dim, horizon * n_channels)

    def forward(self, batch: dict) -> dict:
        x: Tensor = batch_input(batch, INPUTS)
        check_window(x, self.input_len, self.n_channels)
        stats = None
        if self.revin is not None:
            stats = self.revin.statistics(x)
            x = self.revin.normalize(x, stats)
        _, (h, _) = self.lstm(x)  # h: (n_layers, B, hidden_dim)
        y = self.proj(self.drop(h[-1])).view(x.shape[0], self.horizon, self.n_channels)
        if stats is not None:
            y = self.revin.denormalize(y, stats)
        return forecast_output(y, batch)


register_baseline("lstm_forecaster")(LSTMForecaster)

__all__ = ["LSTMForecaster"]
