"""Language-model heads: hidden states -> vocabulary logits -> cross-entropy."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..batch import LABELS
from ..core import CoreConfig
from ..registry import check_sizes, register_head
from ..tokens import Tokens

IGNORE_INDEX = -100  # a label the loss skips (F.cross_entropy's ignore_index); data and metrics import it


def token_cross_entropy(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Mean cross-entropy over the labelled positions, and how many there were.

    CE = -1/T sum_t log softmax(z_t)[y_t], over positions with y_t != -100;
    perplexity = exp(CE).
    """
    n_targets = (labels != IGNORE_INDEX).sum()
    loss = F.cross_entropy(logits.flatten(0, -2).float(), labels.flatten(), ignore_index=IGNORE_INDEX,
                           reduction="sum") / n_targets.clamp(min=1)
    return loss, n_targets


class LMHead(nn.Module):
    """logits = h W^T (+ b), with W optionally the input embedding matrix (Press & Wolf 2017).

    Batch key ``labels`` (B, N): the target token of every position (already
    shifted for causal LM), -100 where no loss is taken.
    """

    def __init__(self, dim: int, vocab_size: int, tie_to: nn.Embedding | None = None, bias: bool = False):
        super().__init__()
        self.proj = nn.Linear(dim, vocab_size, bias=bias)
        if tie_to is not None:
            self.proj.weight = tie_to.weight

    def forward(self, hidden: Tensor, tokens: Tokens, batch: dict) -> dict:
        out = {"logits": self.proj(hidden)}
        if LABELS in batch:
            out["loss"], out["loss_weight"] = token_cross_entropy(out["logits"], batch[LABELS])
        return out


@register_head("causal_lm")
def causal_lm_head(core: CoreConfig, tokenizer: nn.Module, vocab_size: int | None = None,
                   tie_weights: bool = True, bias: bool = False) -> LMHead:
    check_sizes("model.head.args", vocab_size=vocab_size)
    embedding = getattr(tokenizer, "embed", None)
    if vocab_size is None:
        if embedding is None:
            raise ValueError("give head.args.vocab_size: the tokenizer has no embedding to read it from")
        vocab_size = embedding.num_embeddings
    return LMHead(core.d_model, vocab_size, embedding if tie_weights else None, bias)
