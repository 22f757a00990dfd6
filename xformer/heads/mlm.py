"""BERT's pre-training heads: masked language modelling and next-sentence prediction.

Masked LM (Devlin et al. 2019, Sec. 3.1, Task #1), on every position:

    h'     = LayerNorm(GELU(h W_t + b_t))                 the "transform"
    logits = h' E^T + b                                   E = the word embedding (tied), b a free bias
    loss   = CE over the positions whose label != -100    (the ~15% that were masked, see data/mlm.py)

Next-sentence prediction (Task #2), on the first ([CLS]) position only:

    pooled     = tanh(h_[CLS] W_p + b_p)                  BERT's "pooler"
    nsp_logits = pooled W_s + b_s                         2 classes: 0 = B follows A, 1 = B is random
    loss       = loss_mlm + CE(nsp_logits, next_sentence_label)

Both return ``hidden_states`` (the encoder output) so that a plain BERT
encoder (Hugging Face's ``BertModel``) can be read through the same model.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..batch import LABELS, NEXT_SENTENCE_LABEL
from ..core import CoreConfig
from ..registry import check_sizes, register_head
from ..tokens import Tokens
from .lm import token_cross_entropy

# one head, MaskedLMHead, with next-sentence prediction or without: a checkpoint of either gives the other its
# masked-LM layers (head.dense, head.norm, head.decoder)
MASKED_LM_HEADS = ("masked_lm", "masked_lm_nsp")
_ACTIVATIONS = {"gelu": lambda: nn.GELU(), "gelu_tanh": lambda: nn.GELU(approximate="tanh"), "relu": nn.ReLU}


class MaskedLMHead(nn.Module):
    """Batch keys: ``labels`` (B, N), the original id at masked positions and -100 elsewhere;
    with ``nsp=True`` also ``next_sentence_label`` (B,) in {0, 1}."""

    def __init__(self, dim: int, vocab_size: int, tie_to: nn.Embedding | None = None, activation: str = "gelu",
                 norm_eps: float = 1e-12, nsp: bool = False):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose {', '.join(_ACTIVATIONS)}")
        self.dense = nn.Linear(dim, dim)
        self.act = _ACTIVATIONS[activation]()
        self.norm = nn.LayerNorm(dim, eps=norm_eps)
        self.decoder = nn.Linear(dim, vocab_size, bias=True)
        if tie_to is not None:
            self.decoder.weight = tie_to.weight
        self.pooler = nn.Linear(dim, dim) if nsp else None
        self.nsp = nn.Linear(dim, 2) if nsp else None

    def forward(self, hidden: Tensor, tokens: Tokens, batch: dict) -> dict:
        logits = self.decoder(self.norm(self.act(self.dense(hidden))))
        out = {"logits": logits, "hidden_states": hidden}
        if LABELS in batch:
            out["loss"], out["loss_weight"] = token_cross_entropy(logits, batch[LABELS])
        if self.nsp is not None:
            out["pooled"] = self.pooler(hidden[:, 0]).tanh()
            out["nsp_logits"] = self.nsp(out["pooled"])
            if NEXT_SENTENCE_LABEL in batch:
                nsp_loss = F.cross_entropy(out["nsp_logits"].float(), batch[NEXT_SENTENCE_LABEL].view(-1))
                out["nsp_loss"] = nsp_loss
                out["loss"] = out["loss"] + nsp_loss if "loss" in out else nsp_loss
        return out


def _masked_lm(core: CoreConfig, tokenizer: nn.Module, vocab_size: int | None, tie_weights: bool,
               activation: str | None, norm_eps: float | None, nsp: bool) -> MaskedLMHead:
    check_sizes("model.head.args", vocab_size=vocab_size)
    embedding = getattr(tokenizer, "embed", None)
    if vocab_size is None:
        if embedding is None:
            raise ValueError("give head.args.vocab_size: the tokenizer has no embedding to read it from")
        vocab_size = embedding.num_embeddings
    return MaskedLMHead(core.d_model, vocab_size, embedding if tie_weights else None,
                        activation or core.activation, core.norm_eps if norm_eps is None else norm_eps, nsp)


@register_head("masked_lm")
def masked_lm_head(core: CoreConfig, tokenizer: nn.Module, vocab_size: int | None = None, tie_weights: bool = True,
                   activation: str | None = None, norm_eps: float | None = None, nsp: bool = False) -> MaskedLMHead:
    """Activation and LayerNorm eps default to the core's (BERT: gelu, 1e-12)."""
    return _masked_lm(core, tokenizer, vocab_size, tie_weights, activation, norm_eps, nsp)


@register_head("masked_lm_nsp")
def masked_lm_nsp_head(core: CoreConfig, tokenizer: nn.Module, vocab_size: int | None = None,
                       tie_weights: bool = True, activation: str | None = None,
                       norm_eps: float | None = None) -> MaskedLMHead:
    """BERT pre-training: masked LM plus next-sentence prediction (``masked_lm`` with nsp=True)."""
    return _masked_lm(core, tokenizer, vocab_size, tie_weights, activation, norm_eps, nsp=True)


__all__ = ["MASKED_LM_HEADS", "MaskedLMHead"]
