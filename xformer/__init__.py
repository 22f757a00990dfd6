"""xformer: one transformer core for text, images and time series."""
from .core import CoreConfig, Decoder, Encoder, EncoderDecoder
from .models import HEADS, TOKENIZERS, Model, ModelConfig, PartConfig, build_model, register_head, register_tokenizer
from .tokens import Tokens, TokenState

__version__ = "0.1.0"

__all__ = [
    "CoreConfig", "Decoder", "Encoder", "EncoderDecoder", "Tokens", "TokenState", "HEADS", "TOKENIZERS", "Model",
    "ModelConfig", "PartConfig", "build_model", "register_head", "register_tokenizer", "__version__",
]
