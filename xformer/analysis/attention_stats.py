"""Two numbers per attention head, comparable across domains: entropy and mean attention distance.

For one head's attention weights a[q, k] (rows sum to 1) over the queries q of a batch:

    entropy    H = mean_q  - sum_k a[q, k] ln a[q, k]         nats; 0 = one key, ln N = uniform over N keys
    distance   D = mean_q    sum_k a[q, k] |c_q - c_k|         c: a token's coordinates in some unit

(the "mean attention distance" of Dosovitskiy et al. 2021, Fig. 7, there in pixels). With c the token
index, D is in tokens; with c the position of the token in the raw input (a character's offset, a
patch's pixel centre, a series patch's first time step), D is in the domain's unit. Tokens that are
no part of the input grid (a [CLS] token: ``prefix``) are left out as queries and keys, and each
query's weights over the remaining keys are renormalised to sum to 1.
"""
from __future__ import annotations

import torch
from torch import Tensor


def _drop_prefix(a: Tensor, prefix: int) -> Tensor:
    if prefix:
        a = a[..., prefix:, prefix:]
        a = a / a.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    return a


def attention_entropy(a: Tensor, prefix: int = 0) -> Tensor:
    """(B, heads, N, N) weights -> (heads,) mean entropy of a query's weights, in nats."""
    a = _drop_prefix(a.float(), prefix)
    return -(a * a.clamp_min(1e-12).log()).sum(-1).mean(dim=(0, 2))


def attention_distance(a: Tensor, coords: Tensor, prefix: int = 0) -> Tensor:
    """(B, heads, N, N) self-attention weights and (N - prefix, dims) coordinates of the tokens after the
    prefix -> (heads,) mean distance between a query and the keys it attends to, in the coordinates' unit."""
    a = _drop_prefix(a.float(), prefix)
    coords = coords.float().reshape(coords.shape[0], -1)
    if a.shape[-1] != a.shape[-2] or a.shape[-1] != coords.shape[0]:
        raise ValueError(f"self-attention over {coords.shape[0]} tokens expected, got weights {tuple(a.shape)}")
    dist = torch.cdist(coords, coords)  # (N, N) |c_q - c_k|
    return (a * dist).sum(-1).mean(dim=(0, 2))


def uniform_like(a: Tensor) -> Tensor:
    """The same support as ``a`` (the keys each query may see: a causal or padding mask leaves exact zeros),
    spread uniformly: the reference a head with no preference would give."""
    support = (a > 0).float()
    return support / support.sum(dim=-1, keepdim=True).clamp_min(1.0)


def line_coords(n: int, step: float = 1.0) -> Tensor:
    """Coordinates of n tokens in a row, ``step`` units apart (characters, time steps)."""
    return torch.arange(n, dtype=torch.float32)[:, None] * step


def grid_coords(rows: int, cols: int, step: float = 1.0) -> Tensor:
    """Coordinates of a rows x cols grid of patches in row-major order, ``step`` units (pixels) apart."""
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    return torch.stack([r.flatten(), c.flatten()], dim=1).float() * step


__all__ = ["attention_entropy", "attention_distance", "uniform_like", "line_coords", "grid_coords"]
