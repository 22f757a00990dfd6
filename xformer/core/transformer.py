"""The three stacks: Encoder, Decoder, EncoderDecoder. They see (B, N, d) tensors and masks only.

Masks follow ``masks.py``: ``padding_mask`` is (B, N) boolean, True = real token.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .attention import CrossAttention, KVCache, SelfAttention
from .blocks import DecoderBlock, EncoderBlock, Residual
from .config import CoreConfig
from .layers import make_feed_forward, make_norm
from .masks import combine_masks
from .positions import RotaryEmbedding
from .tokens import Tokens


def _residual(cfg: CoreConfig, drop_path: float) -> Residual:
    return Residual(make_norm(cfg.norm, cfg.d_model, cfg.norm_eps), norm_first=cfg.norm_first,
                    dropout=cfg.dropout, drop_path=drop_path, layer_scale=cfg.layer_scale, dim=cfg.d_model)


def _self_attention(cfg: CoreConfig, residual_scores: bool = False) -> SelfAttention:
    rope = RotaryEmbedding(cfg.head_dim, cfg.rope_base) if cfg.rope else None
    return SelfAttention(cfg.d_model, cfg.n_heads, cfg.n_kv_heads, qkv_bias=cfg.qkv_bias, out_bias=cfg.bias,
                         dropout=cfg.attn_dropout, proj_dropout=cfg.attn_proj_dropout, rope=rope,
                         residual_scores=residual_scores)


def _drop_path_rates(cfg: CoreConfig, depth: int) -> list[float]:
    """Stochastic depth grows linearly with depth, 0 at the first block (Huang et al. 2016, timm)."""
    return torch.linspace(0, cfg.drop_path, depth).tolist() if depth > 1 else [cfg.drop_path] * depth


def init_gpt2_(module: nn.Module, n_layers: int, std: float = 0.02) -> None:
    """GPT-2 initialisation: N(0, std) weights, zero biases, and N(0, std / sqrt(2 n_layers))
    for the projections that write into the residual stream (attention ``proj``, feed-forward ``fc2``)."""
    for name, p in module.named_parameters():
        if p.dim() >= 2:
            residual_out = name.endswith("attn.proj.weight") or name.endswith("mlp.fc2.weight")
            nn.init.normal_(p, 0.0, std / math.sqrt(2 * n_layers) if residual_out else std)
        elif name.endswith("bias") and not name.endswith("norm.bias"):
            nn.init.zeros_(p)


class _Stack(nn.Module):
    def __init__(self, cfg: CoreConfig, n_layers: int):
        super().__init__()
        self.config = cfg
        self.n_layers = n_layers
        self.norm = make_norm(cfg.norm, cfg.d_model, cfg.norm_eps) if cfg.has_final_norm else nn.Identity()

    def _init(self) -> None:
        if self.config.init == "gpt2":
            init_gpt2_(self, self.n_layers)


class Encoder(_Stack):
    """Bidirectional stack: every token sees every (non-padding) token."""

    def __init__(self, cfg: CoreConfig):
        super().__init__(cfg, cfg.n_layers)
        rates = _drop_path_rates(cfg, cfg.n_layers)
        self.blocks = nn.ModuleList(
            EncoderBlock(_self_attention(cfg, residual_scores=cfg.residual_attention),
                         make_feed_forward(cfg.activation, cfg.d_model, cfg.hidden_dim, cfg.dropout, cfg.bias),
                         _residual(cfg, rates[i]), _residual(cfg, rates[i]))
            for i in range(cfg.n_layers)
        )
        self._init()

    def forward(self, x: Tensor, padding_mask: Tensor | None = None, attn_mask: Tensor | None = None) -> Tensor:
        n = x.shape[1]
        mask = combine_masks(n_queries=n, n_keys=n, key_padding_mask=padding_mask, attn_mask=attn_mask,
                             dtype=x.dtype, device=x.device)
        if self.config.residual_attention:
            scores = None
            for block in self.blocks:
                x, scores = block(x, mask, scores)
        else:
            for block in self.blocks:
                x = block(x, mask)
        return self.norm(x)

    def forward_tokens(self, tokens: Tokens, cache=None) -> Tensor:
        return self(tokens.x, tokens.padding_mask)


class DecoderCache:
    """Per-layer KV caches of a decoder (self-attention, and cross-attention if any)."""

    def __init__(self, n_layers: int):
        self.self_attn = [KVCache() for _ in range(n_layers)]
        self.cross_attn = [KVCache() for _ in range(n_layers)]
        self.memory: Tensor | None = None  # encoder output, for encoder-decoder models

    @property
    def length(self) -> int:
        """Number of positions already decoded (the offset of the next one)."""
        return self.self_attn[0].length

    def reorder_(self, index: Tensor) -> None:
        for c in self.self_attn + self.cross_attn:
            c.reorder_(index)
        if self.memory is not None:
            self.memory = self.memory.index_select(0, index)


class Decoder(_Stack):
    """Causal stack (GPT style); with ``cross_attention`` each block also attends to a memory."""

    def __init__(self, cfg: CoreConfig, cross_attention: bool = False, n_layers: int | None = None):
        n_layers = n_layers or cfg.n_layers
        if cfg.residual_attention:
            raise ValueError("residual_attention is for encoders (its scores are not kept in the KV cache); "
                             "set core.residual_attention: false for decoders")
        super().__init__(cfg, n_layers)
        rates = _drop_path_rates(cfg, n_layers)

        def block(i: int) -> DecoderBlock:
            cross = None
            if cross_attention:
                cross = CrossAttention(cfg.d_model, cfg.n_heads, cfg.n_kv_heads, qkv_bias=cfg.qkv_bias,
                                       out_bias=cfg.bias, dropout=cfg.attn_dropout,
                                       proj_dropout=cfg.attn_proj_dropout)
            return DecoderBlock(
                _self_attention(cfg),
                make_feed_forward(cfg.activation, cfg.d_model, cfg.hidden_dim, cfg.dropout, cfg.bias),
                _residual(cfg, rates[i]), _residual(cfg, rates[i]),
                cross, _residual(cfg, rates[i]) if cross_attention else None,
            )

        self.blocks = nn.ModuleList(block(i) for i in range(n_layers))
        self._init()

    def new_cache(self) -> DecoderCache:
        return DecoderCache(self.n_layers)

    def forward(self, x: Tensor, memory: Tensor | None = None, padding_mask: Tensor | None = None,
                memory_padding_mask: Tensor | None = None, attn_mask: Tensor | None = None,
                cache: DecoderCache | None = None) -> Tensor:
        """x: (B, N, d) new positions. With a cache, ``padding_mask`` covers the cached
        positions too: shape (B, cache.length + N)."""
        n = x.shape[1]
        n_keys = n + (cache.length if cache is not None else 0)
        if padding_mask is not None and padding_mask.shape[-1] != n_keys:
            raise ValueError(f"padding_mask covers {padding_mask.shape[-1]} positions, expected {n_keys} "
                             "(cached + new)")
        if padding_mask is None and attn_mask is None and n_keys == n:
            mask, causal = None, True  # lets SDPA take its fused causal kernel
        elif padding_mask is None and attn_mask is None and n == 1:
            mask, causal = None, False  # one new position sees every cached one
        else:
            mask = combine_masks(n_queries=n, n_keys=n_keys, causal=True, key_padding_mask=padding_mask,
                                 attn_mask=attn_mask, dtype=x.dtype, device=x.device)
            causal = False
        memory_mask = None
        if memory_padding_mask is not None:
            memory_mask = combine_masks(n_queries=n, n_keys=memory.shape[1], key_padding_mask=memory_padding_mask)
        for i, block in enumerate(self.blocks):
            x = block(x, mask, causal, memory, memory_mask,
                      cache.self_attn[i] if cache is not None else None,
                      cache.cross_attn[i] if cache is not None else None)
        return self.norm(x)

    def forward_tokens(self, tokens: Tokens, cache: DecoderCache | None = None) -> Tensor:
        return self(tokens.x, padding_mask=tokens.padding_mask, cache=cache)


class EncoderDecoder(nn.Module):
    """Encoder over the source, decoder with cross-attention over the target (Vaswani et al. 2017)."""

    def __init__(self, cfg: CoreConfig):
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg, cross_attention=True, n_layers=cfg.n_decoder_layers or cfg.n_layers)

    def new_cache(self) -> DecoderCache:
        return self.decoder.new_cache()

    def encode(self, src: Tensor, src_padding_mask: Tensor | None = None) -> Tensor:
        return self.encoder(src, src_padding_mask)

    def decode(self, tgt: Tensor, memory: Tensor, tgt_padding_mask: Tensor | None = None,
               src_padding_mask: Tensor | None = None, cache: DecoderCache | None = None) -> Tensor:
        return self.decoder(tgt, memory, tgt_padding_mask, src_padding_mask, cache=cache)

    def forward(self, src: Tensor, tgt: Tensor, src_padding_mask: Tensor | None = None,
                tgt_padding_mask: Tensor | None = None, cache: DecoderCache | None = None) -> Tensor:
        memory = self.encode(src, src_padding_mask)
        return self.decode(tgt, memory, tgt_padding_mask, src_padding_mask, cache)

    def forward_tokens(self, tokens: Tokens, cache: DecoderCache | None = None) -> Tensor:
        if tokens.source is None:
            raise ValueError("an encoder-decoder needs source tokens (Tokens.source)")
        src = tokens.source
        if cache is not None and cache.memory is not None:
            memory = cache.memory  # encoded once, at the first decoding step
        else:
            memory = self.encode(src.x, src.padding_mask)
            if cache is not None:
                cache.memory = memory
        return self.decode(tokens.x, memory, tokens.padding_mask, src.padding_mask, cache)
