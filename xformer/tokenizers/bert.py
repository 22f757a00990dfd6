"""BERT's input embedding: word + position + segment (token type), then LayerNorm and dropout.

    x_t = Dropout(LayerNorm(E_word[id_t] + E_pos[t] + E_type[type_t]))      (Devlin et al. 2019, Fig. 2)

The LayerNorm here (eps 1e-12 in BERT) is what makes the post-norm encoder work:
every block then sees normalised inputs, and the core needs no final norm
(``CoreConfig(norm_first=False, final_norm=False)``).

Inputs follow BERT's layout, [CLS] A [SEP] (B [SEP]), so position 0 is always the
[CLS] token: ``Tokens.state`` says so (``class_token=True``, ``prefix_tokens=1``),
which lets the ``classification`` head pool with ``pool=cls`` and makes mean /
attention pooling skip [CLS] (padding is excluded through the mask).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..batch import ATTENTION_MASK, INPUT_IDS, TOKEN_TYPE_IDS, batch_input
from ..core import CoreConfig, Dropout
from ..registry import check_sizes, check_vocabulary, register_tokenizer
from ..tokens import Tokens, TokenState


class BertEmbedding(nn.Module):
    """Batch keys: ``input_ids`` (B, N) long; optional ``attention_mask`` (B, N), 1 = real token;
    optional ``token_type_ids`` (B, N), the segment of each token (0 = sentence A, 1 = sentence B).

    Positions are 0..N-1 as in BERT (inputs are right-padded, so real tokens
    keep their positions). ``embed`` is the word embedding, the matrix a
    masked-LM head ties its decoder to.
    """

    def __init__(self, vocab_size: int, dim: int, max_positions: int = 512, type_vocab_size: int = 2,
                 norm_eps: float = 1e-12, dropout: float = 0.0, pad_id: int | None = None):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.positions = nn.Embedding(max_positions, dim)
        self.token_types = nn.Embedding(type_vocab_size, dim)
        self.norm = nn.LayerNorm(dim, eps=norm_eps)
        self.drop = Dropout(dropout)
        self.token_state = TokenState(prefix_tokens=1, class_token=True)

    def forward(self, batch: dict, offset: int = 0) -> Tokens:
        ids: Tensor = batch_input(batch, INPUT_IDS)
        n = ids.shape[1]
        if offset + n > self.positions.num_embeddings:
            raise ValueError(f"sequence of {offset + n} positions is longer than the "
                             f"{self.positions.num_embeddings} learned positions; use shorter inputs")
        types = batch.get(TOKEN_TYPE_IDS)
        if types is None:
            types = torch.zeros_like(ids)
        pos = torch.arange(offset, offset + n, device=ids.device)
        x = self.embed(ids) + self.positions(pos)[None] + self.token_types(types)
        mask = batch.get(ATTENTION_MASK)
        return Tokens(self.drop(self.norm(x)), mask.bool() if mask is not None else None,
                      state=TokenState(prefix_tokens=1, class_token=True))


@register_tokenizer("bert_text")
def bert_tokenizer(core: CoreConfig, vocab_size: int, max_positions: int = 512, type_vocab_size: int = 2,
                   norm_eps: float = 1e-12, dropout: float = 0.0, pad_id: int | None = None) -> BertEmbedding:
    check_vocabulary("model.tokenizer.args", vocab_size, pad_id)
    check_sizes("model.tokenizer.args", max_positions=max_positions, type_vocab_size=type_vocab_size)
    return BertEmbedding(vocab_size, core.d_model, max_positions, type_vocab_size, norm_eps, dropout, pad_id)


__all__ = ["BertEmbedding"]
