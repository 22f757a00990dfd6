"""Residual sub-layers and transformer blocks, built from parts passed in (attention, feed-forward, residuals).

Pre-norm  (GPT-2, ViT; timm's ``Block``):          x = x + DropPath(LayerScale(Dropout(F(Norm(x)))))
Post-norm (Vaswani, BERT; timm's ``ResPostBlock``): x = Norm(x + DropPath(LayerScale(Dropout(F(x)))))
timm's regularisers: LayerScale(y) = gamma * y, gamma per channel initialised small (Touvron et al. 2021, CaiT);
DropPath(y) = y * b / (1 - p), b ~ Bernoulli(1 - p) per sample, identity at eval (stochastic depth, Huang et al. 2016).
"""
from collections.abc import Callable

from torch import Tensor, nn

from .attention import CrossAttention, KVCache, SelfAttention
from .layers import Dropout, unless_idle


class _Residual(nn.Module):
    """A norm, and what regularises the branch F(.): dropout, layer scale, drop path (each optional)."""

    def __init__(self, norm: nn.Module, dim: int, *, dropout: float = 0.0, drop_path: float = 0.0,
                 layer_scale: float | None = None):
        super().__init__()
        self.norm = norm
        self.dropout = Dropout(dropout)
        if layer_scale is not None or drop_path > 0:  # timm (and torchvision) load only for the models that use them
            from timm.layers import DropPath, LayerScale
        self.scale = LayerScale(dim, layer_scale) if layer_scale is not None else nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def branch(self, y: Tensor) -> Tensor:
        return unless_idle(self.drop_path, unless_idle(self.scale, unless_idle(self.dropout, y)))


class PreNormResidual(_Residual):
    """x + branch(F(Norm(x)))."""

    def forward(self, x: Tensor, sublayer: Callable[[Tensor], Tensor]) -> Tensor:
        return x + self.branch(sublayer(self.norm(x)))


class PostNormResidual(_Residual):
    """Norm(x + branch(F(x)))."""

    def forward(self, x: Tensor, sublayer: Callable[[Tensor], Tensor]) -> Tensor:
        return self.norm(x + self.branch(sublayer(x)))


class EncoderBlock(nn.Module):
    """Bidirectional self-attention then feed-forward: x = res1(x, attn); x = res2(x, mlp)."""

    def __init__(self, attn: SelfAttention, mlp: nn.Module, res1: _Residual, res2: _Residual):
        super().__init__()
        self.attn, self.mlp, self.res1, self.res2 = attn, mlp, res1, res2

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.res2(self.res1(x, lambda h: self.attn(h, mask)), self.mlp)


class DecoderBlock(nn.Module):
    """Causal self-attention, optional cross-attention to a memory, then feed-forward."""

    def __init__(self, attn: SelfAttention, mlp: nn.Module, res1: _Residual, res2: _Residual,
                 cross_attn: CrossAttention | None = None, res_cross: _Residual | None = None):
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
