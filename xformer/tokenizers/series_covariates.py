"""Series tokens with covariates: PatchTST's patches of one target channel, then patches of its past-observed
and future-known covariates (xformer/forecast/covariates.py makes them), each patch of all k columns
(patch_len * k values) projected linearly to d, plus learned positions; then, with static (per-series)
covariates s in R^S, one more token

    x_static = W_s s + b_s + e_static          (W_s: d x S, e_static: a learned d-vector, its position)

The core sees one longer sequence (N + N_past + N_future [+ 1] tokens) and is not changed; the forecast
head flattens all of them."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..batch import FUTURE_COVARIATES as FUTURE
from ..batch import PAST_COVARIATES as PAST
from ..batch import STATIC_COVARIATES as STATIC
from ..core import CoreConfig
from ..registry import check_sizes, register_tokenizer
from ..tokens import Tokens
from .positions import make_positions
from .series import PatchTokenizer, n_patches, patchify


class CovariatePatchTokenizer(PatchTokenizer):
    """PatchTST's tokens of one target channel, followed by the tokens of its covariates."""

    def __init__(self, input_len: int, dim: int, horizon: int, n_past: int, n_future: int, patch_len: int = 16,
                 stride: int = 8, padding: str = "end", dropout: float = 0.0, revin: bool = True,
                 affine: bool = False, n_static: int = 0):
        super().__init__(1, input_len, dim, patch_len, stride, padding, "learned", dropout, revin, affine)
        self.horizon, self.n_past, self.n_future, self.n_static = horizon, n_past, n_future, n_static
        self.n_target = self.n_tokens
        self.n_past_tokens = n_patches(input_len, patch_len, stride, padding) if n_past else 0
        self.n_future_tokens = n_patches(input_len + horizon, patch_len, stride, padding) if n_future else 0
        if n_past:
            self.past_proj = nn.Linear(patch_len * n_past, dim)
            self.past_positions = make_positions("learned", self.n_past_tokens, dim)
        if n_future:
            self.future_proj = nn.Linear(patch_len * n_future, dim)
            self.future_positions = make_positions("learned", self.n_future_tokens, dim)
        if n_static:
            self.static_proj = nn.Linear(n_static, dim)
            self.static_position = make_positions("learned", 1, dim)  # e_static, made as the patches' positions
        self.n_tokens = self.n_target + self.n_past_tokens + self.n_future_tokens + (1 if n_static else 0)

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
        if self.n_static:
            s = batch.get(STATIC)
            if s is None or s.dim() != 2 or s.shape[1] != self.n_static:
                shape = None if s is None else tuple(s.shape)
                raise ValueError(f"{STATIC} must be (batch, {self.n_static}), got {shape}")
            parts.append(self.drop(self.static_proj(s)[:, None] + self.static_position(1)))
        return Tokens(torch.cat(parts, dim=1), state=tokens.state)


@register_tokenizer("series_patches_covariates")
def series_patches_covariates(core: CoreConfig, input_len: int, horizon: int, n_past: int = 0, n_future: int = 0,
                              patch_len: int = 16, stride: int = 8, padding: str = "end", dropout: float = 0.0,
                              revin: bool = True, affine: bool = False, n_channels: int = 1, n_static: int = 0
                              ) -> CovariatePatchTokenizer:
    check_sizes("model.tokenizer.args", input_len=input_len, horizon=horizon, patch_len=patch_len, stride=stride)
    if n_channels != 1:
        raise ValueError("series_patches_covariates reads one target channel (n_channels: 1)")
    return CovariatePatchTokenizer(input_len, core.d_model, horizon, n_past, n_future, patch_len, stride, padding,
                                   dropout, revin, affine, n_static)
