"""The modality-agnostic transformer core: it sees (B, N, d) tensors and masks, nothing else."""
from .attention import CrossAttention, KVCache, SelfAttention, attend, attention_math, capture_attention
from .blocks import DecoderBlock, EncoderBlock, Residual
from .config import CoreConfig
from .layers import Dropout, Mlp, SwiGLU, dropout, make_feed_forward, make_norm
from .masks import causal_mask, combine_masks
from .positions import (LearnedPositions, NoPositions, RotaryEmbedding, SinusoidalPositions, make_positions,
                        sincos_2d_table, sinusoidal_table)
from .tokens import Tokens
from .transformer import Decoder, DecoderCache, Encoder, EncoderDecoder, init_gpt2_

__all__ = [
    "CrossAttention", "KVCache", "SelfAttention", "attend", "attention_math", "capture_attention",
    "DecoderBlock", "EncoderBlock", "Residual", "CoreConfig", "Dropout", "dropout", "Mlp", "SwiGLU",
    "make_feed_forward", "make_norm",
    "causal_mask", "combine_masks", "LearnedPositions", "NoPositions", "RotaryEmbedding", "SinusoidalPositions",
    "make_positions", "sincos_2d_table", "sinusoidal_table", "Tokens", "Decoder", "DecoderCache", "Encoder",
    "EncoderDecoder", "init_gpt2_",
]
