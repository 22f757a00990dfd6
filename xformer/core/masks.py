"""Attention masks. A boolean mask means ``True = may attend / is a real token`` everywhere (as in
``scaled_dot_product_attention`` and Hugging Face's ``attention_mask``); an additive float mask M is
added to the scores (0 keeps a key, -inf removes it). :func:`combine_masks` folds all the masks of one
attention call into one, broadcastable to (B, heads, N_q, N_k), for the fused and explicit paths alike.
"""
import torch
from torch import Tensor


def causal_mask(n_queries: int, n_keys: int, device=None) -> Tensor:
    """Boolean (N_q, N_k): query i sees key j iff j <= i + (N_k - N_q), the queries being the last N_q
    positions (a KV cache's keys come first)."""
    last_key_seen = torch.arange(n_queries, device=device).unsqueeze(1) + (n_keys - n_queries)
    return torch.arange(n_keys, device=device) <= last_key_seen


def combine_masks(*, n_queries: int, n_keys: int, causal: bool = False, key_padding_mask: Tensor | None = None,
                  attn_mask: Tensor | None = None, dtype: torch.dtype = torch.float32, device=None) -> Tensor | None:
    """Fold a causal flag, a key-padding mask (B, N_k) and any mask into one: None when nothing is masked,
    boolean when every part is, else additive (``dtype``). A query row that would see no key (a left-padding
    position under a causal mask) sees every key instead: no real token reads it, and an all-masked softmax
    row would be NaN and poison later layers (0 * NaN = NaN)."""
    mask: Tensor | None = None
    if causal:
        mask = causal_mask(n_queries, n_keys, device=device)[None, None]
    if key_padding_mask is not None:
        if key_padding_mask.dtype != torch.bool:
            raise TypeError("key_padding_mask must be boolean (True = real token)")
        pad = key_padding_mask[:, None, None, :]
        mask = pad if mask is None else mask & pad
    if attn_mask is not None:
        attn_mask = attn_mask[(None,) * (4 - attn_mask.dim())]  # leading dims up to (B, heads, N_q, N_k)
        if attn_mask.dtype == torch.bool:
            mask = attn_mask if mask is None else mask & attn_mask
        else:
            additive = attn_mask.to(dtype)
            if mask is not None:
                additive = additive.masked_fill(~mask, float("-inf"))
            return torch.where(torch.isfinite(additive).any(-1, keepdim=True), additive, torch.zeros_like(additive))
    if mask is not None:
        mask = mask | ~mask.any(-1, keepdim=True)
    return mask
