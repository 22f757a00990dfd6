"""The one config that describes a transformer stack, whatever the data."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class CoreConfig:
    """Width, depth and parts of an Encoder / Decoder / EncoderDecoder (``build.py`` reads it).

    ``n_kv_heads`` < ``n_heads``: grouped-query attention. ``attn_proj_dropout`` drops the attention
    output after its projection, before the residual ``dropout`` (PatchTST applies both).
    ``init="gpt2"``: weights ~ N(0, 0.02), residual output projections ~ N(0, 0.02 / sqrt(2 n_layers))
    (Radford et al. 2019); ``init="torch"`` keeps PyTorch's defaults.
    """

    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int | None = None
    d_ff: int | None = None  # None: 4 * d_model
    activation: Literal["gelu", "gelu_tanh", "relu", "swiglu"] = "gelu"
    norm: Literal["layernorm", "rmsnorm", "batchnorm"] = "layernorm"  # batchnorm: unpadded inputs (PatchTST)
    norm_eps: float = 1e-5
    norm_first: bool = True
    final_norm: bool | None = None  # None: a final norm exactly when norm_first
    qkv_bias: bool = True
    bias: bool = True
    dropout: float = 0.0
    attn_dropout: float = 0.0
    attn_proj_dropout: float = 0.0
    residual_attention: bool = False  # RealFormer / PatchTST's res_attention; encoders only
    drop_path: float = 0.0
    layer_scale: float | None = None
    rope: bool = False  # rotary positions inside attention (absolute ones are the tokenizer's)
    rope_base: float = 10000.0
    init: Literal["gpt2", "torch"] = "gpt2"
    n_decoder_layers: int | None = None  # EncoderDecoder only; None: same as n_layers

    def __post_init__(self):
        for name in ("d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff", "n_decoder_layers"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not (self.norm_eps > 0 and self.rope_base > 0):
            raise ValueError(f"norm_eps and rope_base must be > 0, got {self.norm_eps} and {self.rope_base}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        if self.n_kv_heads is not None and self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads={self.n_heads} must be a multiple of n_kv_heads={self.n_kv_heads}")
        for name in ("dropout", "attn_dropout", "attn_proj_dropout", "drop_path"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    @property
    def hidden_dim(self) -> int:
        return self.d_ff or 4 * self.d_model

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def has_final_norm(self) -> bool:
        return self.norm_first if self.final_norm is None else self.final_norm
