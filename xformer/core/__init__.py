"""The modality-agnostic transformer core: it sees (B, N, d) tensors and masks, nothing else.

``build`` reads a CoreConfig and hands the parts to the modules: ``build.encoder(cfg)``,
``build.decoder(cfg)``, ``build.encoder_decoder(cfg)``.
"""
from . import build
from .attention import CrossAttention, KVCache, SelfAttention, attend, attention_math
from .blocks import DecoderBlock, EncoderBlock, PostNormResidual, PreNormResidual
from .build import init_gpt2_
from .config import CoreConfig
from .layers import Dropout, Mlp, SwiGLU, dropout, make_feed_forward, make_norm, unless_idle
from .masks import causal_mask, combine_masks
from .positions import RotaryEmbedding
from .residual_attention import ResidualAttentionBlock, ResidualAttentionEncoder, ResidualScoresAttention
from .transformer import Decoder, DecoderCache, Encoder, EncoderDecoder
