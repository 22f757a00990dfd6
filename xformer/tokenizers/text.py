"""Text tokens: integer ids -> embeddings (+ absolute positions).

The string -> id step (WordPiece, characters) happens in the data pipeline;
this module is the learned lookup that turns ids into (B, N, d) vectors.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..batch import ATTENTION_MASK, INPUT_IDS, SRC_IDS, SRC_MASK, batch_input
from ..core import CoreConfig, Dropout
from ..registry import check_sizes, check_vocabulary, register_tokenizer
from ..tokens import Tokens
from .positions import make_positions


class TextEmbedding(nn.Module):
    """x_t = E[id_t] + P[pos_t], with P learned, sinusoidal, or none (e.g. with RoPE in the core).

    Batch keys: ``input_ids`` (B, N) long; optional ``attention_mask`` (B, N), 1 = real token.
    Positions count real tokens only, so a left-padded prompt gets the same
    positions as the unpadded one (as Hugging Face does with ``position_ids``).
    """

    def __init__(self, vocab_size: int, dim: int, max_positions: int = 1024, positions: str = "learned",
                 dropout: float = 0.0, pad_id: int | None = None, ids_key: str = INPUT_IDS,
                 mask_key: str = ATTENTION_MASK):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.positions = make_positions(positions, max_positions, dim)
        self.drop = Dropout(dropout)
        self.ids_key, self.mask_key = ids_key, mask_key

    def forward(self, batch: dict, offset: int = 0) -> Tokens:
        ids: Tensor = batch_input(batch, self.ids_key)
        mask = batch.get(self.mask_key)
        mask = mask.bool() if mask is not None else None
        x = self.embed(ids)
        n = ids.shape[1]
        shared = self.positions(n, offset)  # positions offset .. offset + n - 1, every row's without padding
        if mask is not None:
            # per-row positions: count the real tokens before each one (over cache + new positions). Chosen by
            # torch.where, not by asking the tensor (bool(mask.all()) would break a torch.compile graph); an
            # unpadded batch still adds ``shared``, whose gradient sums over the batch as it does without a mask.
            pos = (mask.long().cumsum(-1) - 1).clamp(min=0)[:, -n:]
            table = self.positions(mask.shape[1])
            if isinstance(table, Tensor):
                shared = torch.where(mask.all(), shared, table[pos])
        return Tokens(self.drop(x + shared), mask)


class Seq2SeqEmbedding(nn.Module):
    """Source and target ids through one shared embedding (Vaswani et al. 2017, Sec. 3.4).

    Batch keys: ``src_ids`` / ``src_mask`` for the encoder, ``input_ids`` /
    ``attention_mask`` for the (shifted-right) decoder input.
    """

    def __init__(self, vocab_size: int, dim: int, max_positions: int = 1024, positions: str = "learned",
                 dropout: float = 0.0, pad_id: int | None = None):
        super().__init__()
        self.target = TextEmbedding(vocab_size, dim, max_positions, positions, dropout, pad_id)
        self.source = TextEmbedding(vocab_size, dim, max_positions, positions, dropout, pad_id,
                                    ids_key=SRC_IDS, mask_key=SRC_MASK)
        self.source.embed = self.target.embed  # shared vocabulary, shared weights
        self.embed = self.target.embed

    def forward(self, batch: dict, offset: int = 0) -> Tokens:
        tokens = self.target(batch, offset)
        tokens.source = self.source(batch)
        return tokens


@register_tokenizer("text")
def text_tokenizer(core: CoreConfig, vocab_size: int, max_positions: int = 1024, positions: str = "learned",
                   dropout: float = 0.0, pad_id: int | None = None) -> TextEmbedding:
    check_vocabulary("model.tokenizer.args", vocab_size, pad_id)
    check_sizes("model.tokenizer.args", max_positions=max_positions)
    return TextEmbedding(vocab_size, core.d_model, max_positions, positions, dropout, pad_id)


@register_tokenizer("seq2seq_text")
def seq2seq_tokenizer(core: CoreConfig, vocab_size: int, max_positions: int = 1024, positions: str = "learned",
                      dropout: float = 0.0, pad_id: int | None = None) -> Seq2SeqEmbedding:
    check_vocabulary("model.tokenizer.args", vocab_size, pad_id)
    check_sizes("model.tokenizer.args", max_positions=max_positions)
    return Seq2SeqEmbedding(vocab_size, core.d_model, max_positions, positions, dropout, pad_id)


__all__ = ["TextEmbedding", "Seq2SeqEmbedding"]
