"""The three stacks: Encoder, Decoder, EncoderDecoder. They take their blocks and final norm as arguments
(``build.py`` makes them from a CoreConfig) and see (B, N, d) tensors and masks (``masks.py``) only:

    x_l = block_l(x_{l-1}, mask),  l = 1 .. L;   output = Norm(x_L);   padding_mask: (B, N), True = real token
"""
from collections.abc import Iterable

from torch import Tensor, nn

from .attention import KVCache
from .masks import combine_masks


class _Stack(nn.Module):
    def __init__(self, blocks: Iterable[nn.Module], norm: nn.Module | None = None):
        if not isinstance(blocks, Iterable):  # e.g. a CoreConfig, as the stacks took before the builders
            raise TypeError("a stack takes blocks and a norm; from a CoreConfig: xformer.core.build.encoder(cfg) etc.")
        super().__init__()
        self.norm = norm if norm is not None else nn.Identity()
        self.blocks = nn.ModuleList(blocks)


class Encoder(_Stack):
    """Bidirectional stack: every token sees every (non-padding) token."""

    def forward(self, x: Tensor, padding_mask: Tensor | None = None, attn_mask: Tensor | None = None) -> Tensor:
        mask = combine_masks(n_queries=x.shape[1], n_keys=x.shape[1], key_padding_mask=padding_mask,
                             attn_mask=attn_mask, dtype=x.dtype, device=x.device)
        return self.norm(self.run_blocks(x, mask))

    def run_blocks(self, x: Tensor, mask: Tensor | None) -> Tensor:
        for block in self.blocks:
            x = block(x, mask)
        return x


class DecoderCache:
    """Per-layer KV caches of a decoder (self-attention, and cross-attention if any)."""

    def __init__(self, n_layers: int):
        self.self_attn = [KVCache() for _ in range(n_layers)]
        self.cross_attn = [KVCache() for _ in range(n_layers)]
        self.memory: Tensor | None = None  # encoder output, for encoder-decoder models

    length = property(lambda self: self.self_attn[0].length)  # positions decoded so far: the next one's offset

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
                memory_padding_mask: Tensor | None = None, cache: DecoderCache | None = None) -> Tensor:
        """x: (B, N, d) new positions; with a cache, ``padding_mask`` covers cached + new: (B, cache.length + N)."""
        n = x.shape[1]
        n_keys = n + (cache.length if cache is not None else 0)
        if padding_mask is not None and padding_mask.shape[-1] != n_keys:
            raise ValueError(f"padding_mask covers {padding_mask.shape[-1]} positions, not cached + new = {n_keys}")
        mask, causal = None, n_keys == n  # SDPA's fused causal kernel; one new position sees every cached one
        if padding_mask is not None or n not in (1, n_keys):
            mask, causal = combine_masks(n_queries=n, n_keys=n_keys, causal=True, key_padding_mask=padding_mask,
                                         dtype=x.dtype, device=x.device), False
        memory_mask = None if memory_padding_mask is None else combine_masks(
            n_queries=n, n_keys=memory.shape[1], key_padding_mask=memory_padding_mask)
        caches = zip(cache.self_attn, cache.cross_attn) if cache is not None else [(None, None)] * len(self.blocks)
        for block, (self_cache, cross_cache) in zip(self.blocks, caches):
            x = block(x, mask, causal, memory, memory_mask, self_cache, cross_cache)
        return self.norm(x)


class EncoderDecoder(nn.Module):
    """Encoder over the source, decoder with cross-attention over the target (Vaswani et al. 2017)."""

    def __init__(self, encoder: Encoder, decoder: Decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def new_cache(self) -> DecoderCache:
        return self.decoder.new_cache()

    def forward(self, src: Tensor, tgt: Tensor, src_padding_mask: Tensor | None = None,
                tgt_padding_mask: Tensor | None = None, cache: DecoderCache | None = None) -> Tensor:
        return self.decoder(tgt, self.encoder(src, src_padding_mask), tgt_padding_mask, src_padding_mask, cache=cache)
