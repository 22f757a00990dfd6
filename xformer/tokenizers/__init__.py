"""Modality adapters: the only code that knows what the raw data is."""
from .text import Seq2SeqEmbedding, TextEmbedding

__all__ = ["TextEmbedding", "Seq2SeqEmbedding"]
