"""Residual attention (RealFormer, He et al. 2021; PatchTST's ``res_attention``), a composed encoder.

Each layer adds the previous layer's pre-softmax scores to its own (the mask applies to the softmax only),

    S_l = Q_l K_l^T / sqrt(d_k) + S_{l-1},   Attention_l = softmax(S_l + M) V_l,   S_0 = 0;

its attention, blocks and stack pass (x, S_l) along; they add no parameters to SelfAttention /
EncoderBlock / Encoder (same state-dict names). Encoders only: a KV cache keeps no scores.
"""
from torch import Tensor

from .attention import SelfAttention, attention_math
from .blocks import EncoderBlock
from .transformer import Encoder


class ResidualScoresAttention(SelfAttention):
    """Self-attention on the explicit path that adds ``prev_scores`` and returns ``(output, S_l)``."""

    def forward(self, x: Tensor, mask: Tensor | None = None,
                prev_scores: Tensor | None = None) -> tuple[Tensor, Tensor]:
        p = self.dropout if self.training else 0.0
        out, weights, scores = attention_math(*self._qkv(x), mask, dropout_p=p, prev_scores=prev_scores)
        if self.keep_weights:
            self.last_weights = weights
        return self._project(out), scores


class ResidualAttentionBlock(EncoderBlock):
    """An encoder block whose attention takes the previous block's scores; returns ``(x, scores)``,
    as PatchTST's ``TSTEncoderLayer``."""

    def forward(self, x: Tensor, mask: Tensor | None = None,
                prev_scores: Tensor | None = None) -> tuple[Tensor, Tensor]:
        scores = []

        def attention(h: Tensor) -> Tensor:
            h, s = self.attn(h, mask, prev_scores)
            scores.append(s)
            return h

        x = self.res1(x, attention)
        return self.res2(x, self.mlp), scores[0]


class ResidualAttentionEncoder(Encoder):
    """An encoder of :class:`ResidualAttentionBlock` s, each handing its scores to the next."""

    def run_blocks(self, x: Tensor, mask: Tensor | None) -> Tensor:
        scores = None
        for block in self.blocks:
            x, scores = block(x, mask, scores)
        return x
