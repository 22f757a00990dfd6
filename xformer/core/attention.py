"""Multi-head attention on ``torch.nn.functional.scaled_dot_product_attention``.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + M) V

with M = 0 where a query may see a key and -inf elsewhere (``masks.py``). Heads are a tensor dimension;
grouped-query attention shares each key/value head among n_heads / n_kv_heads query heads.
"""
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import Dropout, dropout, unless_idle
from .masks import causal_mask
from .positions import RotaryEmbedding


def attention_math(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, causal: bool = False,
                   dropout_p: float = 0.0, prev_scores: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`attend` written out, so that the weights can be read and the fused kernel checked: returns
    (output, weights, scores), the last two (B, heads, N_q, N_k), with
    scores = Q K^T / sqrt(d_k) + ``prev_scores`` (residual attention), before the mask."""
    groups = q.shape[1] // k.shape[1]
    if groups > 1:
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]) if prev_scores is None else torch.baddbmm(
        prev_scores.flatten(0, -3), q.flatten(0, -3), k.flatten(0, -3).transpose(1, 2),  # scale, GEMM and add:
        alpha=1 / math.sqrt(q.shape[-1])).view_as(prev_scores)  # one kernel, no separate scale and add pass
    masked = scores
    if causal:
        mask = causal_mask(q.shape[-2], k.shape[-2], device=q.device)
    if mask is not None:
        masked = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    weights = masked.softmax(dim=-1)
    return dropout(weights, dropout_p) @ v, weights, scores


def attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, causal: bool = False,
           dropout_p: float = 0.0) -> Tensor:
    """The fused path: ``scaled_dot_product_attention`` with the same meaning as :func:`attention_math`. On a CPU,
    bf16 / fp16 inputs run in fp32, cast back: its low-precision kernels take 3-4x longer (benchmarks/README.md)."""
    if q.device.type == "cpu" and q.dtype in (torch.bfloat16, torch.float16):
        with torch.autocast("cpu", enabled=False):
            mask = mask if mask is None or mask.dtype == torch.bool else mask.float()
            return attend(q.float(), k.float(), v.float(), mask, causal, dropout_p).to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                          is_causal=causal and mask is None, enable_gqa=q.shape[1] != k.shape[1])


class KVCache:
    """Keys and values (B, kv_heads, T, head_dim) of the positions decoded so far (self-attention, grown by
    ``append``), or of the encoder memory (cross-attention, stored once)."""

    def __init__(self):
        self.k: Tensor | None = None
        self.v: Tensor | None = None

    length = property(lambda self: 0 if self.k is None else self.k.shape[-2])

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        if self.k is not None:
            k, v = torch.cat([self.k, k], dim=-2), torch.cat([self.v, v], dim=-2)
        self.k, self.v = k, v
        return k, v

    def reorder_(self, index: Tensor) -> None:
        """Keep the batch rows ``index`` (beam search)."""
        if self.k is not None:
            self.k, self.v = self.k.index_select(0, index), self.v.index_select(0, index)


class _HeadsAttention(nn.Module):
    """What self- and cross-attention share: head bookkeeping, the attend step, the output projection."""

    def __init__(self, dim: int, n_heads: int, n_kv_heads: int | None, out_bias: bool, dropout: float,
                 proj_dropout: float = 0.0):
        super().__init__()
        n_kv_heads = n_kv_heads or n_heads
        if dim % n_heads:
            raise ValueError(f"d_model={dim} is not divisible by n_heads={n_heads}")
        if n_heads % n_kv_heads:
            raise ValueError(f"n_heads={n_heads} is not a multiple of n_kv_heads={n_kv_heads}")
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, dim // n_heads
        self.dropout = dropout
        self.proj = nn.Linear(dim, dim, bias=out_bias)
        self.proj_drop = Dropout(proj_dropout)
        self.keep_weights = False  # True: the explicit path, weights kept in last_weights (analysis)
        self.last_weights: Tensor | None = None

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, causal: bool) -> Tensor:
        """The fused path, or the explicit one while ``keep_weights`` (analysis.capture_attention)."""
        p = self.dropout if self.training else 0.0
        if not self.keep_weights:
            return attend(q, k, v, mask, causal, p)
        out, self.last_weights, _ = attention_math(q, k, v, mask, causal, p)
        return out

    def _project(self, out: Tensor) -> Tensor:
        """(B, heads, N, head_dim) -> concatenated heads (B, N, d) -> output projection."""
        return unless_idle(self.proj_drop, self.proj(out.transpose(1, 2).flatten(2)))


class SelfAttention(_HeadsAttention):
    """Self-attention with one fused QKV projection, optional rotary positions and KV cache; ``dropout``
    and ``proj_dropout`` are timm's ``attn_drop`` (on the weights) and ``proj_drop``."""

    def __init__(self, dim: int, n_heads: int, n_kv_heads: int | None = None, *, qkv_bias: bool = True,
                 out_bias: bool = True, dropout: float = 0.0, proj_dropout: float = 0.0,
                 rope: RotaryEmbedding | None = None):
        super().__init__(dim, n_heads, n_kv_heads, out_bias, dropout, proj_dropout)
        self.qkv = nn.Linear(dim, (self.n_heads + 2 * self.n_kv_heads) * self.head_dim, bias=qkv_bias)
        self.rope = rope

    def _qkv(self, x: Tensor, cache: KVCache | None = None) -> tuple[Tensor, Tensor, Tensor]:
        heads = self.qkv(x).view(*x.shape[:2], -1, self.head_dim)  # viewed, then split: 2 ops fewer than the reverse
        q, k, v = (t.transpose(1, 2) for t in heads.split([self.n_heads, self.n_kv_heads, self.n_kv_heads], dim=2))
        if self.rope is not None:
            offset = cache.length if cache is not None else 0
            q, k = self.rope(q, offset), self.rope(k, offset)
        if cache is not None:
            k, v = cache.append(k, v)
        return q, k, v

    def forward(self, x: Tensor, mask: Tensor | None = None, causal: bool = False,
                cache: KVCache | None = None) -> Tensor:
        return self._project(self._attend(*self._qkv(x, cache), mask, causal))


class CrossAttention(_HeadsAttention):
    """Queries from x, keys and values (one fused projection) from a memory sequence."""

    def __init__(self, dim: int, n_heads: int, n_kv_heads: int | None = None, *, memory_dim: int | None = None,
                 qkv_bias: bool = True, out_bias: bool = True, dropout: float = 0.0, proj_dropout: float = 0.0):
        super().__init__(dim, n_heads, n_kv_heads, out_bias, dropout, proj_dropout)
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(memory_dim or dim, 2 * self.n_kv_heads * self.head_dim, bias=qkv_bias)

    def forward(self, x: Tensor, memory: Tensor, mask: Tensor | None = None, cache: KVCache | None = None) -> Tensor:
        q = self.q(x).view(*x.shape[:2], -1, self.head_dim).transpose(1, 2)
        if cache is not None and cache.k is not None:
            k, v = cache.k, cache.v  # the memory does not change while decoding
        else:
            k, v = (t.transpose(1, 2) for t in self.kv(memory).view(*memory.shape[:2], -1, self.head_dim).chunk(2, 2))
            if cache is not None:
                cache.append(k, v)
        return self._project(self._attend(q, k, v, mask, causal=False))

