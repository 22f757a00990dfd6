"""The three stacks: Encoder, Decoder, EncoderDecoder. They take their blocks and final norm as
arguments (``build.py`` makes them from a CoreConfig) and see (B, N, d) tensors and masks only:

    x_l = block_l(x_{l-1}, mask),  l = 1 .. L;   output = Norm(x_L)

Masks follow ``masks.py``: ``padding_mask`` is (B, N) boolean, True = real token.
"""
from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor, nn

from .attention import KVCache
from .config import CoreConfig
from .masks import combine_masks


class _Stack(nn.Module):
    def __init__(self, blocks: Iterable[nn.Module], norm: nn.Module | None = None):
        if isinstance(blocks, CoreConfig):
            raise TypeError("a stack takes its blocks and norm; build one from a CoreConfig with "
                            "xformer.core.build.encoder(cfg), .decoder(cfg) or .encoder_decoder(cfg)")
        super().__init__()
        self.norm = norm if norm is not None else nn.Identity()
        self.blocks = nn.ModuleList(blocks)


class Encoder(_Stack):
    """Bidirectional stack: every token sees every (non-padding) token."""

    @staticmethod
    def attention_mask(x: Tensor, padding_mask: Tensor | None, attn_mask: Tensor | None) -> Tensor | None:
        n = x.shape[1]
        return combine_masks(n_queries=n, n_keys=n, key_padding_mask=padding_mask, attn_mask=attn_mask,
                             dtype=x.dtype, device=x.device)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None, attn_mask: Tensor | None = None) -> Tensor:
        mask = self.attention_mask(x, padding_mask, attn_mask)
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x)


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
    """Causal stack (GPT style); blocks with cross-attention also attend to a memory."""

    def new_cache(self) -> DecoderCache:
        return DecoderCache(len(self.blocks))

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
        memory_mask = None if memory_padding_mask is None else combine_masks(
            n_queries=n, n_keys=memory.shape[1], key_padding_mask=memory_padding_mask)
        for i, block in enumerate(self.blocks):
            x = block(x, mask, causal, memory, memory_mask,
                      cache.self_attn[i] if cache is not None else None,
                      cache.cross_attn[i] if cache is not None else None)
        return self.norm(x)


class EncoderDecoder(nn.Module):
    """Encoder over the source, decoder with cross-attention over the target (Vaswani et al. 2017)."""

    def __init__(self, encoder: Encoder, decoder: Decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

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
