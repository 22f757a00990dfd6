"""Builders: the only code that reads a CoreConfig. They make the parts and hand them to the modules,
as torchtune's component builders do:

    encoder(cfg)         = Encoder([EncoderBlock(self_attention, feed_forward, residual, residual)] * L, norm)
                           (residual_attention: ResidualAttentionEncoder of ResidualAttentionBlocks)
    decoder(cfg)         = Decoder([DecoderBlock(self_attention, feed_forward, residual, residual
                                                 [, cross_attention, residual])] * L, norm)
    encoder_decoder(cfg) = EncoderDecoder(encoder(cfg), decoder(cfg, cross=True))

``residual``: PreNormResidual if ``norm_first`` else PostNormResidual; ``norm``: only if ``cfg.has_final_norm``.
"""
import math

import torch
from torch import nn

from .attention import CrossAttention, SelfAttention
from .blocks import DecoderBlock, EncoderBlock, PostNormResidual, PreNormResidual
from .config import CoreConfig
from .layers import make_feed_forward, make_norm
from .positions import RotaryEmbedding
from .residual_attention import ResidualAttentionBlock, ResidualAttentionEncoder, ResidualScoresAttention
from .transformer import Decoder, Encoder, EncoderDecoder


def norm(cfg: CoreConfig) -> nn.Module:
    return make_norm(cfg.norm, cfg.d_model, cfg.norm_eps)


def residual(cfg: CoreConfig, drop_path: float = 0.0) -> nn.Module:
    kind = PreNormResidual if cfg.norm_first else PostNormResidual
    return kind(norm(cfg), cfg.d_model, dropout=cfg.dropout, drop_path=drop_path, layer_scale=cfg.layer_scale)


def self_attention(cfg: CoreConfig, kind: type[SelfAttention] = SelfAttention) -> SelfAttention:
    rope = RotaryEmbedding(cfg.head_dim, cfg.rope_base) if cfg.rope else None
    return kind(cfg.d_model, cfg.n_heads, cfg.n_kv_heads, qkv_bias=cfg.qkv_bias, out_bias=cfg.bias,
                dropout=cfg.attn_dropout, proj_dropout=cfg.attn_proj_dropout, rope=rope)


def cross_attention(cfg: CoreConfig) -> CrossAttention:
    return CrossAttention(cfg.d_model, cfg.n_heads, cfg.n_kv_heads, qkv_bias=cfg.qkv_bias, out_bias=cfg.bias,
                          dropout=cfg.attn_dropout, proj_dropout=cfg.attn_proj_dropout)


def feed_forward(cfg: CoreConfig) -> nn.Module:
    return make_feed_forward(cfg.activation, cfg.d_model, cfg.hidden_dim, cfg.dropout, cfg.bias)


def drop_path_rates(rate: float, depth: int) -> list[float]:
    """Linear stochastic depth from 0 at block 1 (Huang et al. 2016, timm); CPU numbers even under memory.py's meta."""
    return torch.linspace(0, rate, depth, device="cpu").tolist()


def init_gpt2_(module: nn.Module, n_layers: int, std: float = 0.02) -> None:
    """GPT-2 initialisation: N(0, std) weights, zero biases, and N(0, std / sqrt(2 n_layers))
    for the projections that write into the residual stream (attention ``proj``, feed-forward ``fc2``)."""
    for name, p in module.named_parameters():
        if p.dim() >= 2:
            residual_out = name.endswith("attn.proj.weight") or name.endswith("mlp.fc2.weight")
            nn.init.normal_(p, 0.0, std / math.sqrt(2 * n_layers) if residual_out else std)
        elif name.endswith("bias") and not name.endswith("norm.bias"):
            nn.init.zeros_(p)


def stack(kind: type[nn.Module], blocks: list[nn.Module], cfg: CoreConfig) -> nn.Module:
    """``kind(blocks, final norm or None)``, GPT-2 initialised when ``cfg.init == "gpt2"``."""
    module = kind(blocks, norm(cfg) if cfg.has_final_norm else None)
    if cfg.init == "gpt2":
        init_gpt2_(module, len(blocks))
    return module


def encoder(cfg: CoreConfig) -> Encoder:
    """A bidirectional stack of ``cfg.n_layers`` blocks; with ``residual_attention`` its blocks pass scores on."""
    block, attention, kind = EncoderBlock, SelfAttention, Encoder
    if cfg.residual_attention:
        block, attention, kind = ResidualAttentionBlock, ResidualScoresAttention, ResidualAttentionEncoder
    blocks = [block(self_attention(cfg, attention), feed_forward(cfg), residual(cfg, rate), residual(cfg, rate))
              for rate in drop_path_rates(cfg.drop_path, cfg.n_layers)]
    return stack(kind, blocks, cfg)


def decoder(cfg: CoreConfig, cross: bool = False, n_layers: int | None = None) -> Decoder:
    """A causal stack of ``n_layers`` (default ``cfg.n_layers``) blocks; with ``cross`` each block also
    attends to a memory (the encoder output)."""
    if cfg.residual_attention:
        raise ValueError("residual_attention is for encoders (its scores are not kept in the KV cache); "
                         "set core.residual_attention: false for decoders")
    n_layers = n_layers or cfg.n_layers

    def block(rate: float) -> DecoderBlock:
        memory_attention = cross_attention(cfg) if cross else None  # made first, as in earlier releases (RNG order)
        return DecoderBlock(self_attention(cfg), feed_forward(cfg), residual(cfg, rate), residual(cfg, rate),
                            memory_attention, residual(cfg, rate) if cross else None)

    return stack(Decoder, [block(rate) for rate in drop_path_rates(cfg.drop_path, n_layers)], cfg)


def encoder_decoder(cfg: CoreConfig) -> EncoderDecoder:
    """Encoder over the source; decoder of ``n_decoder_layers`` (default ``n_layers``) with cross-attention."""
    return EncoderDecoder(encoder(cfg), decoder(cfg, cross=True, n_layers=cfg.n_decoder_layers or cfg.n_layers))


ARCHITECTURES = {"encoder": encoder, "decoder": decoder, "encoder-decoder": encoder_decoder}
