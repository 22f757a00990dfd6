"""Transformer blocks, built from parts passed in (attention, feed-forward, norms).

Pre-norm  (GPT-2, ViT):  x = x + DropPath(LayerScale(Dropout(F(Norm(x)))))
Post-norm (Vaswani, BERT): x = Norm(x + Dropout(F(x)))
"""
from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from .attention import CrossAttention, KVCache, SelfAttention
from .layers import Dropout, DropPath, LayerScale


class Residual(nn.Module):
    """One residual sub-layer around ``F`` in pre- or post-norm arrangement."""

    def __init__(self, norm: nn.Module, *, norm_first: bool = True, dropout: float = 0.0,
                 drop_path: float = 0.0, layer_scale: float | None = None, dim: int | None = None):
        super().__init__()
        self.norm = norm
        self.norm_first = norm_first
        self.dropout = Dropout(dropout)
        self.scale = LayerScale(dim, layer_scale) if layer_scale is not None else nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor, sublayer: Callable[[Tensor], Tensor]) -> Tensor:
        if self.norm_first:
            return x + self.drop_path(self.scale(self.dropout(sublayer(self.norm(x)))))
        return self.norm(x + self.drop_path(self.scale(self.dropout(sublayer(x)))))


class EncoderBlock(nn.Module):
    """Bidirectional self-attention then feed-forward.

    With residual attention (``attn.residual_scores``) the block takes the previous block's
    pre-softmax scores and returns ``(x, scores)``, as PatchTST's ``TSTEncoderLayer``.
    """

    def __init__(self, attn: SelfAttention, mlp: nn.Module, res1: Residual, res2: Residual):
        super().__init__()
        self.attn, self.mlp, self.res1, self.res2 = attn, mlp, res1, res2

    def forward(self, x: Tensor, mask: Tensor | None = None,
                prev_scores: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        if not self.attn.residual_scores:
            x = self.res1(x, lambda h: self.attn(h, mask))
            return self.res2(x, self.mlp)
        scores = None

        def attention(h: Tensor) -> Tensor:
            nonlocal scores
            h, scores = self.attn(h, mask, prev_scores=prev_scores)
            return h

        x = self.res1(x, attention)
        return self.res2(x, self.mlp), scores


class DecoderBlock(nn.Module):
    """Causal self-attention, optional cross-attention to a memory, then feed-forward."""

    def __init__(self, attn: SelfAttention, mlp: nn.Module, res1: Residual, res2: Residual,
                 cross_attn: CrossAttention | None = None, res_cross: Residual | None = None):
        super().__init__()
        self.attn, self.mlp, self.res1, self.res2 = attn, mlp, res1, res2
        self.cross_attn, self.res_cross = cross_attn, res_cross

    def forward(self, x: Tensor, mask: Tensor | None = None, causal: bool = True,
                memory: Tensor | None = None, memory_mask: Tensor | None = None,
                cache: KVCache | None = None, cross_cache: KVCache | None = None) -> Tensor:
        x = self.res1(x, lambda h: self.attn(h, mask, causal, cache))
        if self.cross_attn is not None:
            if memory is None:
                raise ValueError("this decoder has cross-attention: pass the encoder output as memory")
            x = self.res_cross(x, lambda h: self.cross_attn(h, memory, memory_mask, cross_cache))
        return self.res2(x, self.mlp)
