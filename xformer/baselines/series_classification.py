"""Series classification baselines: the fully convolutional network and the residual network of Wang, Yan & Oates
2017 ("Time series classification from scratch with deep neural networks: a strong baseline", IJCNN), the deep
baselines of the UCR/UEA literature (Fawaz et al. 2019, "Deep learning for time series classification: a review",
whose reference code, hfawaz/dl-4-tsc ``classifiers/fcn.py`` and ``resnet.py``, these follow; sktime's, aeon's and
tsai's FCN and ResNet are the same networks).

Each is an ``nn.Module`` with the forward contract of :class:`xformer.models.Model` with a classification head:
``forward(batch) -> {"logits": (B, K), "loss", "loss_weight"}`` (the loss only when the batch has ``labels``),
reading ``inputs`` (B, L, C), the windows of the ``series_classification`` data, which the convolutions read as
(B, C, L). The loss is the classification head's, cross-entropy with label smoothing eps:

    loss = -1/B sum_i sum_k q_ik log softmax(z_i)_k,   q_i = (1 - eps) onehot(y_i) + eps / K

and ``loss_weight`` = B, so the trainer trains them like the PatchTST classifier and ``evaluate_imbalanced``
scores them unchanged. The building block of both is a convolution over time, batch norm, ReLU:

    u_{o,t} = b_o + sum_c sum_{j=0}^{k-1} W_{o,c,j} x_{c, t + j - floor((k-1)/2)}   ('same' padding with zeros:
                                                                                   L steps in, L out)
    BN(u)_{o,t} = gamma_o (u_{o,t} - mu_o) / sqrt(var_o + eps) + beta_o              (mu, var over batch and time)
    block(x) = ReLU(BN(u))

and both end in global average pooling over time and one linear layer,

    g_o = 1/L sum_t h_{o,t}   (B, widths[-1]),    z = W Dropout(g) + b   (B, K)

so the weights do not depend on the window's length. Build one by name:

    model = build_baseline("fcn", n_channels=1, input_len=60, n_classes=6)

``n_channels``, ``input_len`` and ``n_classes`` are the arguments a ``series_classification`` ``DataBundle.model_args``
provides (a recipe names one as ``model: {baseline: {name: resnet1d, args: {dropout: 0.1}}}`` and the data fills them
in). The weights start from PyTorch's default initialisation (the reference code's Keras uses Glorot uniform).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ..batch import INPUTS, batch_input
from ..core import Dropout
from ..errors import ConfigError
from ..heads.classification import classification_output
from ..registry import is_whole_number, register_baseline


def _check(n_channels: int, input_len: int, n_classes: int, widths: Sequence[int], kernel_sizes: Sequence[int],
           dropout: float, label_smoothing: float) -> tuple[list[int], list[int]]:
    """The arguments both networks share, checked; (widths, kernel_sizes) as lists of ints."""
    for key, value, least in (("n_channels", n_channels, 1), ("input_len", input_len, 1), ("n_classes", n_classes, 2)):
        if not is_whole_number(value) or value < least:
            raise ValueError(f"{key} must be a whole number >= {least}, got {value!r}")
    for key, values in (("widths", widths), ("kernel_sizes", kernel_sizes)):
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values or \
                not all(is_whole_number(v) and v >= 1 for v in values):
            raise ValueError(f"{key} must be a non-empty list of whole numbers >= 1, got {values!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    return [int(w) for w in widths], [int(k) for k in kernel_sizes]


def _windows(batch: dict, input_len: int, n_channels: int) -> Tensor:
    """The batch's ``inputs`` (B, L, C) checked and turned to the convolutions' (B, C, L)."""
    x: Tensor = batch_input(batch, INPUTS)
    if x.dim() != 3 or x.shape[1] != input_len or x.shape[2] != n_channels:
        raise ConfigError(f"inputs must be (batch, {input_len}, {n_channels}) windows of input_len={input_len} steps "
                          f"and n_channels={n_channels} channels, got {tuple(x.shape)}; the data sets both: leave "
                          "them out of model.baseline.args")
    return x.transpose(1, 2)


class SameConv1d(nn.Conv1d):
    """A Conv1d with 'same' padding: (k-1)//2 zeros before the series and the rest after (k//2), as Keras and
    ``padding="same"`` pad an even kernel; (B, c_in, L) -> (B, c_out, L). Padded here, not by ``padding="same"``,
    which warns on every even kernel."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int):
        super().__init__(c_in, c_out, kernel_size)
        self.pad = ((kernel_size - 1) // 2, kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.pad(x, self.pad) if any(self.pad) else x)


class ConvBNReLU(nn.Sequential):
    """block(x) = ReLU(BN(conv_k(x))) with 'same' padding, (B, c_in, L) -> (B, c_out, L). ``relu=False`` leaves the
    ReLU out (a residual branch's last convolution)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, relu: bool = True):
        layers = [SameConv1d(c_in, c_out, kernel_size), nn.BatchNorm1d(c_out)]
        super().__init__(*layers, *([nn.ReLU()] if relu else []))


class FCN(nn.Module):
    """The fully convolutional network (Wang et al. 2017): three conv blocks, GAP, linear.

        h_1 = block_8(x),  h_2 = block_5(h_1),  h_3 = block_3(h_2)      widths 128, 256, 128
        z = W Dropout(GAP(h_3)) + b

    ``widths`` and ``kernel_sizes`` (one per block, same length) change the blocks; the paper's are the defaults.
    With C=1, K=2: 264,962 parameters.
    """

    def __init__(self, n_channels: int, input_len: int, n_classes: int, widths: Sequence[int] = (128, 256, 128),
                 kernel_sizes: Sequence[int] = (8, 5, 3), dropout: float = 0.0, label_smoothing: float = 0.0):
        super().__init__()
        widths, kernel_sizes = _check(n_channels, input_len, n_classes, widths, kernel_sizes, dropout,
                                      label_smoothing)
        if len(widths) != len(kernel_sizes):
            raise ValueError(f"widths and kernel_sizes need one entry per block, got {len(widths)} widths and "
                             f"{len(kernel_sizes)} kernel_sizes")
        self.n_channels, self.input_len, self.label_smoothing = n_channels, input_len, label_smoothing
        ins = [n_channels, *widths[:-1]]
        self.features = nn.Sequential(*(ConvBNReLU(c_in, c_out, k) for c_in, c_out, k in zip(ins, widths,
                                                                                              kernel_sizes)))
        self.drop = Dropout(dropout)
        self.fc = nn.Linear(widths[-1], n_classes)
        self.n_classes = n_classes  # a label beyond them is refused before the loss (classes_of)

    def forward(self, batch: dict) -> dict:
        h = self.features(_windows(batch, self.input_len, self.n_channels)).mean(dim=2)  # GAP over time
        return classification_output(self.fc(self.drop(h)), batch, self.label_smoothing)


class ResidualBlock(nn.Module):
    """y = ReLU(F(x) + S(x)), Fawaz et al.'s residual block:

        F(x) = BN(conv_3(ReLU(BN(conv_5(ReLU(BN(conv_8(x))))))))     (the kernels of ``kernel_sizes``)
        S(x) = BN(conv_1x1(x))   when c_in != c_out,   BN(x)   when they are equal

    (B, c_in, L) -> (B, c_out, L).
    """

    def __init__(self, c_in: int, c_out: int, kernel_sizes: Sequence[int]):
        super().__init__()
        ins = [c_in] + [c_out] * (len(kernel_sizes) - 1)
        last = len(kernel_sizes) - 1
        self.branch = nn.Sequential(*(ConvBNReLU(i, c_out, k, relu=n < last)
                                      for n, (i, k) in enumerate(zip(ins, kernel_sizes))))
        self.shortcut = (nn.Sequential(nn.Conv1d(c_in, c_out, 1), nn.BatchNorm1d(c_out)) if c_in != c_out
                         else nn.BatchNorm1d(c_out))
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.branch(x) + self.shortcut(x))  # the residual sum


class ResNet1d(nn.Module):
    """The residual network (Wang et al. 2017; Fawaz et al. 2019's reference code): residual blocks, GAP, linear.

        h_1 = ResBlock(x) (64),  h_2 = ResBlock(h_1) (128),  h_3 = ResBlock(h_2) (128)
        z = W Dropout(GAP(h_3)) + b

    ``widths``: one residual block per entry (the paper's 64, 128, 128); ``kernel_sizes``: the convolutions of
    every block (the paper's 8, 5, 3; a ReLU after each but the last). With C=1, K=2: 504,258 parameters.
    """

    def __init__(self, n_channels: int, input_len: int, n_classes: int, widths: Sequence[int] = (64, 128, 128),
                 kernel_sizes: Sequence[int] = (8, 5, 3), dropout: float = 0.0, label_smoothing: float = 0.0):
        super().__init__()
        widths, kernel_sizes = _check(n_channels, input_len, n_classes, widths, kernel_sizes, dropout,
                                      label_smoothing)
        self.n_channels, self.input_len, self.label_smoothing = n_channels, input_len, label_smoothing
        ins = [n_channels, *widths[:-1]]
        self.blocks = nn.Sequential(*(ResidualBlock(c_in, c_out, kernel_sizes) for c_in, c_out in zip(ins, widths)))
        self.drop = Dropout(dropout)
        self.fc = nn.Linear(widths[-1], n_classes)
        self.n_classes = n_classes  # a label beyond them is refused before the loss (classes_of)

    def forward(self, batch: dict) -> dict:
        h = self.blocks(_windows(batch, self.input_len, self.n_channels)).mean(dim=2)  # GAP over time
        return classification_output(self.fc(self.drop(h)), batch, self.label_smoothing)


register_baseline("fcn")(FCN)
register_baseline("resnet1d")(ResNet1d)

__all__ = ["FCN", "ResNet1d", "ResidualBlock", "ConvBNReLU", "SameConv1d"]
