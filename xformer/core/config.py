"""The one config that describes a transformer stack, whatever the data."""
from dataclasses import dataclass
from typing import Literal


@dataclass
class CoreConfig:
    """Width, depth and parts of an Encoder / Decoder / EncoderDecoder (``build.py`` reads it).

    ``n_kv_heads`` < ``n_heads``: grouped-query attention. ``attn_proj_dropout`` drops the attention output after
    its projection, before the residual ``dropout`` (PatchTST applies both). ``init="gpt2"``: weights ~ N(0, 0.02),
    residual output projections ~ N(0, 0.02 / sqrt(2 n_layers)) (Radford et al. 2019); ``init="torch"``: PyTorch's."""

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
    layer_scale: float | None = None  # CaiT's LayerScale: its initial value, > 0 and float32-sized (<= 3.4e38)
    rope: bool = False  # rotary positions inside attention (absolute ones are the tokenizer's)
    rope_base: float = 10000.0
    init: Literal["gpt2", "torch"] = "gpt2"
    n_decoder_layers: int | None = None  # EncoderDecoder only; None: same as n_layers

    def __post_init__(self):
        sizes = ("d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff", "n_decoder_layers")
        rates = ("dropout", "attn_dropout", "attn_proj_dropout", "drop_path")
        value = self.__dict__.get
        problems = [f"{k} must be >= 1, got {value(k)}" for k in sizes if value(k) is not None and value(k) < 1]
        problems += [f"{k} must be in [0, 1), got {value(k)}" for k in rates if not 0.0 <= value(k) < 1.0]
        problems += [f"{k} must be > 0, got {value(k)}" for k in ("norm_eps", "rope_base") if not value(k) > 0]
        if self.layer_scale is not None and not 0 < self.layer_scale <= 3.4e38:  # a float32 parameter holds it
            problems.append(f"layer_scale must be a number in (0, 3.4e38] or null, got {self.layer_scale}")
        if not problems and (self.d_model % self.n_heads or self.n_heads % (self.n_kv_heads or self.n_heads)):
            problems.append(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}, "
                            f"and n_heads by n_kv_heads={self.n_kv_heads}")
        if problems:  # all of them at once: one fix, one rerun
            raise ValueError("; ".join(problems))

    hidden_dim = property(lambda self: self.d_ff or 4 * self.d_model)
    head_dim = property(lambda self: self.d_model // self.n_heads)
    has_final_norm = property(lambda self: self.norm_first if self.final_norm is None else self.final_norm)
