"""Time-series tokens: RevIN, then PatchTST patches (one sequence per channel) or one token per time step.

Batch key ``inputs``: (B, L, C) float, a window of L time steps of C channels.

Two ways to turn a window into tokens, registered separately so they can be compared:

- ``series_patches`` (Nie et al. 2023, PatchTST): every channel becomes its own
  sequence ("channel independence", (B, L, C) -> (B*C, N, d)); the sequence is
  cut into N patches of ``patch_len`` steps, ``stride`` apart, and each patch is
  projected linearly to d. With ``padding="end"`` the last value is repeated
  ``stride`` times first, as PatchTST does, so
      N = (L - patch_len) // stride + 1 (+ 1 with end padding).
  ``padding="none"`` cuts from the first step (the last (L - patch_len) % stride steps are in no patch);
  ``padding="start"`` leaves out the first (L - patch_len) % stride steps instead, so the last patch ends at
  the last step, as Hugging Face's ``PatchTSTPatchify`` does (its ``sequence_start``).
- ``series_steps`` (the vanilla Transformer way, as in Informer's embeddings
  without the time features): the C-vector of each time step is projected to
  d, so (B, L, C) -> (B, L, d) and the channels are mixed from the first layer.

Both normalise each window with RevIN first (optional) and leave, in
``Tokens.state`` (a ``TokenState``), what the head needs: ``n_channels``,
``channel_independent``, the RevIN statistics ``revin_loc`` / ``revin_scale`` and
``denormalize`` (a function of a (B, H, C) tensor that undoes RevIN with them).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..batch import INPUTS, batch_input
from ..core import CoreConfig, Dropout
from ..errors import ConfigError
from ..registry import check_sizes, register_tokenizer
from ..tokens import Tokens, TokenState
from .positions import make_positions


class RevIN(nn.Module):
    """Reversible instance normalisation (Kim et al. 2022), as in PatchTST's ``RevIN``.

    Per window and channel, over the L time steps of x (B, L, C):
        mu = mean_t x_t            (or the last value x_L with ``subtract_last``)
        sigma = sqrt(var_t x_t + eps)          (biased variance)
        normalise:   x' = gamma * (x - mu) / sigma + beta      (gamma, beta only with ``affine``)
        denormalise: y  = (y' - beta) / (gamma + eps^2) * sigma + mu
    mu and sigma are statistics of the input, not parameters: gradients do not flow into them.
    """

    def __init__(self, n_channels: int, affine: bool = False, subtract_last: bool = False, eps: float = 1e-5):
        super().__init__()
        self.affine, self.subtract_last, self.eps = affine, subtract_last, eps
        if affine:
            self.weight = nn.Parameter(torch.ones(n_channels))
            self.bias = nn.Parameter(torch.zeros(n_channels))

    def statistics(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(location, scale), each (B, 1, C)."""
        loc = x[:, -1:, :] if self.subtract_last else x.mean(dim=1, keepdim=True)
        scale = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps)
        return loc.detach(), scale.detach()

    def normalize(self, x: Tensor, stats: tuple[Tensor, Tensor]) -> Tensor:
        loc, scale = stats
        x = (x - loc) / scale
        return x * self.weight + self.bias if self.affine else x

    def denormalize(self, y: Tensor, stats: tuple[Tensor, Tensor]) -> Tensor:
        """y: (B, H, C) -> the input's scale."""
        loc, scale = stats
        if self.affine:
            y = (y - self.bias) / (self.weight + self.eps * self.eps)
        return y * scale + loc


PADDINGS = ("end", "none", "start")


def n_patches(input_len: int, patch_len: int, stride: int, padding: str = "end") -> int:
    """N = (L - patch_len) // stride + 1, plus one with end padding (PatchTST's ``patch_num``)."""
    if padding not in PADDINGS:  # checked here, when the tokenizer is built, not at its first batch
        raise ValueError(f"unknown padding {padding!r}; choose {', '.join(PADDINGS)}")
    if patch_len > input_len:
        raise ValueError(f"patch_len={patch_len} is longer than input_len={input_len}; give a patch_len of at most "
                         f"{input_len}")
    return (input_len - patch_len) // stride + 1 + (padding == "end")


def patchify(x: Tensor, patch_len: int, stride: int, padding: str = "end") -> Tensor:
    """(B, L, C) -> (B, C, N, patch_len); end padding repeats x_L ``stride`` times (ReplicationPad1d((0, stride))),
    start drops the first (L - patch_len) % stride steps (Hugging Face's ``sequence_start``)."""
    z = x.transpose(1, 2)  # (B, C, L)
    if padding == "end":
        z = torch.cat([z, z[..., -1:].expand(*z.shape[:-1], stride)], dim=-1)
    elif padding == "start":
        z = z[..., (z.shape[-1] - patch_len) % stride:]
    elif padding != "none":
        raise ValueError(f"unknown padding {padding!r}; choose {', '.join(PADDINGS)}")
    return z.unfold(-1, patch_len, stride)


def check_window(x: Tensor, input_len: int, n_channels: int) -> None:
    """A batch of windows must be (B, input_len, n_channels): one line naming the shape otherwise (and, since
    the data sets both when a recipe leaves them out, where a recipe that set them should set them instead)."""
    if x.dim() != 3 or x.shape[1] != input_len or x.shape[2] != n_channels:
        raise ConfigError(f"inputs must be (batch, {input_len}, {n_channels}), got {tuple(x.shape)}: the model reads "
                          f"windows of input_len={input_len} steps of n_channels={n_channels} series; the data sets "
                          "both (data.args.input_len, and columns for the channels): leave them out of "
                          "model.tokenizer.args")


class _SeriesTokenizer(nn.Module):
    """RevIN (optional) in front; the subclass turns the normalised window into (B', N, d)."""

    channel_independent: bool

    def __init__(self, n_channels: int, input_len: int, revin: bool, affine: bool, subtract_last: bool):
        super().__init__()
        self.n_channels, self.input_len = n_channels, input_len
        self.revin = RevIN(n_channels, affine, subtract_last) if revin else None

    def embed(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    @property
    def token_state(self) -> TokenState:
        """Tokens per sequence and the channel layout (a head's factory reads it)."""
        return TokenState(n_tokens=self.n_tokens, n_channels=self.n_channels,
                          channel_independent=self.channel_independent)

    def forward(self, batch: dict, offset: int = 0) -> Tokens:
        x: Tensor = batch_input(batch, INPUTS)
        check_window(x, self.input_len, self.n_channels)
        state = TokenState(n_channels=self.n_channels, channel_independent=self.channel_independent)
        if self.revin is not None:
            stats = self.revin.statistics(x)
            x = self.revin.normalize(x, stats)
            state.revin_loc, state.revin_scale = stats
            state.denormalize = lambda y: self.revin.denormalize(y, stats)
        return Tokens(self.embed(x), state=state)


class PatchTokenizer(_SeriesTokenizer):
    """PatchTST's input side: x_p = W_P patch_p + W_pos[p], then dropout; (B, L, C) -> (B*C, N, d)."""

    channel_independent = True

    def __init__(self, n_channels: int, input_len: int, dim: int, patch_len: int = 16, stride: int = 8,
                 padding: str = "end", positions: str = "learned", dropout: float = 0.0, revin: bool = True,
                 affine: bool = False, subtract_last: bool = False):
        super().__init__(n_channels, input_len, revin, affine, subtract_last)
        self.patch_len, self.stride, self.padding = patch_len, stride, padding
        self.n_tokens = n_patches(input_len, patch_len, stride, padding)
        self.proj = nn.Linear(patch_len, dim)
        self.positions = make_positions(positions, self.n_tokens, dim)
        self.drop = Dropout(dropout)

    def embed(self, x: Tensor) -> Tensor:
        patches = patchify(x, self.patch_len, self.stride, self.padding)  # (B, C, N, P)
        tokens = self.proj(patches.flatten(0, 1))  # (B*C, N, d)
        return self.drop(tokens + self.positions(self.n_tokens))


class StepTokenizer(_SeriesTokenizer):
    """One token per time step: x_t = W x_t(C-vector) + P[t], then dropout; (B, L, C) -> (B, L, d)."""

    channel_independent = False

    def __init__(self, n_channels: int, input_len: int, dim: int, positions: str = "sinusoidal",
                 dropout: float = 0.0, revin: bool = True, affine: bool = False, subtract_last: bool = False):
        super().__init__(n_channels, input_len, revin, affine, subtract_last)
        self.n_tokens = input_len
        self.proj = nn.Linear(n_channels, dim)
        self.positions = make_positions(positions, input_len, dim)
        self.drop = Dropout(dropout)

    def embed(self, x: Tensor) -> Tensor:
        return self.drop(self.proj(x) + self.positions(self.input_len))


@register_tokenizer("series_patches")
def series_patches(core: CoreConfig, n_channels: int, input_len: int, patch_len: int = 16, stride: int = 8,
                   padding: str = "end", positions: str = "learned", dropout: float = 0.0, revin: bool = True,
                   affine: bool = False, subtract_last: bool = False) -> PatchTokenizer:
    check_sizes("model.tokenizer.args", n_channels=n_channels, input_len=input_len, patch_len=patch_len, stride=stride)
    return PatchTokenizer(n_channels, input_len, core.d_model, patch_len, stride, padding, positions, dropout,
                          revin, affine, subtract_last)


@register_tokenizer("series_steps")
def series_steps(core: CoreConfig, n_channels: int, input_len: int, positions: str = "sinusoidal",
                 dropout: float = 0.0, revin: bool = True, affine: bool = False,
                 subtract_last: bool = False) -> StepTokenizer:
    check_sizes("model.tokenizer.args", n_channels=n_channels, input_len=input_len)
    return StepTokenizer(n_channels, input_len, core.d_model, positions, dropout, revin, affine, subtract_last)


__all__ = ["RevIN", "n_patches", "patchify", "PatchTokenizer", "StepTokenizer"]
