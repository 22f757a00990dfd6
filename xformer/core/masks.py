"""Attention masks: one convention for the whole toolkit.

Every boolean mask in xformer means ``True = may attend / is a real token``
(the convention of ``scaled_dot_product_attention`` and of Hugging Face's
``attention_mask``). Additive float masks are added to the attention scores
(0 keeps a key, ``-inf`` removes it).

All masks that apply to one attention call are folded into a single mask of
shape broadcastable to ``(B, heads, N_q, N_k)`` by :func:`combine_masks`, so the
fused and the explicit attention paths see exactly the same mask.
"""
from __future__ import annotations

import torch
from torch import Tensor


def causal_mask(n_queries: int, n_keys: int, device=None) -> Tensor:
    """Boolean (N_q, N_k) mask where query i may see key j iff j <= i + (N_k - N_q).

    The offset aligns the queries with the *last* N_q keys, which is what
    incremental decoding with a KV cache needs (the cached keys come first).
    """
    offset = n_keys - n_queries
    q = torch.arange(n_queries, device=device).unsqueeze(1)
    k = torch.arange(n_keys, device=device).unsqueeze(0)
    return k <= q + offset


def combine_masks(
    *,
    n_queries: int,
    n_keys: int,
    causal: bool = False,
    key_padding_mask: Tensor | None = None,
    attn_mask: Tensor | None = None,
    dtype: torch.dtype = torch.float32,
    device=None,
) -> Tensor | None:
    """Fold a causal flag, a key-padding mask (B, N_k) and an arbitrary mask into one.

    Returns None when nothing is masked, a boolean mask when every part is
    boolean, and an additive float mask (dtype ``dtype``) when ``attn_mask``
    is additive. A query row that would see no key at all (e.g. a left-padding
    position under a causal mask) is allowed to see every key instead: its
    output is never read by a real token, and this keeps it finite, where an
    all-masked softmax row would give NaN and poison later layers (0 * NaN = NaN).
    """
    mask: Tensor | None = None
    if causal:
        mask = causal_mask(n_queries, n_keys, device=device)[None, None]
    if key_padding_mask is not None:
        if key_padding_mask.dtype != torch.bool:
            raise TypeError("key_padding_mask must be boolean (True = real token)")
        pad = key_padding_mask[:, None, None, :]
        mask = pad if mask is None else mask & pad
    if attn_mask is not None:
        while attn_mask.dim() < 4:
            attn_mask = attn_mask.unsqueeze(0)
        if attn_mask.dtype == torch.bool:
            mask = attn_mask if mask is None else mask & attn_mask
        else:
            additive = attn_mask.to(dtype)
            if mask is not None:
                additive = additive.masked_fill(~mask, float("-inf"))
            finite_row = torch.isfinite(additive).any(-1, keepdim=True)
            return torch.where(finite_row, additive, torch.zeros_like(additive))
    if mask is not None:
        mask = mask | ~mask.any(-1, keepdim=True)
    return mask
