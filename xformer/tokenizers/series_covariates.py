"""Series tokens with covariates: PatchTST's patches of one target channel, then patches of its past-observed
and future-known covariates (xformer/forecast/covariates.py makes them), each patch of all k columns
(patch_len * k values) projected linearly to d, plus learned positions. The core sees one longer sequence
(N + N_past + N_future tokens) and is not changed; the forecast head flattens all of them."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..batch import FUTURE_COVARIATES as FUTURE
from ..batch import PAST_COVARIATES as PAST
from ..core import CoreConfig
from ..registry import check_sizes, register_tokenizer
from ..tokens import Tokens
from .positions import make_positions
from .series import PatchTokenizer, n_patches, patchify


class CovariatePatchTokenizer(PatchTokenizer):
    """PatchTST's tokens of one target channel, followed by the tokens of its covariates."""

    def __init__(self, input_len: int, dim: int, horizon: int, n_past: int, n_future: int, patch_len: int = 16,
                 stride: int = 8, padding: str = "end", dropout: float = 0.0, revin: bool = True,
                 affine: bool = False):
        super().__init__(1, input_len, dim, patch_len, stride, padding, "learned", dropout, revin, affine)
        self.horizon, self.n_past, self.n_future = horizon, n_past, n_future
        self.n_target = self.n_tokens
        self.n_past_tokens = n_patches(input_len, patch_len, stride, padding) if n_past else 0
        self.n_future_tokens = n_patches(input_len + horizon, patch_len, stride, padding) if n_future else 0
        if n_past:
            self.past_proj = nn.Linear(patch_len * n_past, dim)
            self.past_positions = make_positions("learned", self.n_past_tokens, dim)
        if n_future:
            self.future_proj = nn.Linear(patch_len * n_future, dim)
            self.future_positions = make_positions("learned", self.n_future_tokens, dim)
        self.n_tokens = self.n_target + self.n_past_tokens + self.n_future_tokens

    def embed(self, x: Tensor) -> Tensor:
        patches = patchify(x, self.patch_len, self.stride, self.padding)  # (B, 1, N, patch_len)
        return self.drop(self.proj(patches.flatten(0, 1)) + self.positions(self.n_target))

    def _covariate_tokens(self, z: Tensor, length: int, k: int, proj: nn.Module, positions: nn.Module,
                          key: str) -> Tensor:
        if z is None or z.dim() != 3 or z.shape[1] != length or z.shape[2] != k:
            shape = None if z is None else tuple(z.shape)
            raise ValueError(f"{key} must be (batch, {length}, {k}), got {shape}")
        patches = patchify(z, self.patch_len, self.stride, self.padding)  # (B, k, N, patch_len)
        patches = patches.permute(0, 2, 3, 1).flatten(2)  # (B, N, patch_len * k)
        return self.drop(proj(patches) + positions(patches.shape[1]))

    def forward(self, batch: dict, offset: int = 0) -> Tokens:
        tokens = super().forward(batch)
        parts = [tokens.x]
        if self.n_past:
            parts.append(self._covariate_tokens(batch.get(PAST), self.input_len, self.n_past, self.past_proj,
                                                self.past_positions, PAST))
        if self.n_future:
            parts.append(self._covariate_tokens(batch.get(FUTURE), self.input_len + self.horizon, self.n_future,
                                                self.future_proj, self.future_positions, FUTURE))
        return Tokens(torch.cat(parts, dim=1), state=tokens.state)


@register_tokenizer("series_patches_covariates")
def series_patches_covariates(core: CoreConfig, input_len: int, horizon: int, n_past: int = 0, n_future: int = 0,
                              patch_len: int = 16, stride: int = 8, padding: str = "end", dropout: float = 0.0,
                              revin: bool = True, affine: bool = False, n_channels: int = 1
                              ) -> CovariatePatchTokenizer:
    check_sizes("model.tokenizer.args", input_len=input_len, horizon=horizon, patch_len=patch_len, stride=stride)
    if n_channels != 1:
        raise ValueError("series_patches_covariates reads one target channel (n_channels: 1)")
    return CovariatePatchTokenizer(input_len, core.d_model, horizon, n_past, n_future, patch_len, stride, padding,
                                   dropout, revin, affine)
