"""Sequence classification: pool the core's tokens into one vector, then a linear classifier.

    h = pool(H)            H: (B, N, d) core output
    h = norm(h)            optional (timm's ``fc_norm``)
    h = tanh(W_p h + b_p)  optional ``pooler``: BERT's pooler (Hugging Face's BertForSequenceClassification)
                           and the original ViT's pre-logits layer (its ``representation_size``)
    z = W dropout(h) + b   logits (B, K)
    loss = CE(z, y) with label smoothing eps:
           -sum_k q_k log softmax(z)_k,  q = (1 - eps) onehot(y) + eps / K

Pooling, for any modality's Tokens (image patches, series patches, text):

- ``cls``: h = H[:, 0], the [CLS] token (ViT, BERT); needs a tokenizer that puts one there.
- ``mean``: h = sum_t m_t H_t / sum_t m_t over the non-prefix tokens, m = padding_mask
  (True = real token), so padding never changes the result.
- ``attention``: a learned query q attends over the non-prefix, non-padding tokens,
  h = MultiHead(q, H, H) (a single-query cross-attention, as timm's AttentionPoolLatent
  without its MLP; Lee et al. 2019 "PMA").

``Tokens.state.prefix_tokens`` (cls + register tokens) says how many leading
tokens are not content; mean and attention pooling skip them (as timm does).
``labels`` may be class indices (B,) long or class probabilities (B, K) float,
e.g. from MixUp/CutMix; F.cross_entropy takes both.

Channel-independent series tokens (``series_patches``: one sequence per channel, (B*C, N, d))
are regrouped after pooling, as PatchTST's classification head does: the C pooled vectors of
an example are concatenated, h = [h_1; ...; h_C] (C*d), and the linear layer reads that.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..batch import LABELS
from ..core import CoreConfig, CrossAttention, Dropout, combine_masks, make_norm, unless_idle
from ..errors import ConfigError
from ..registry import check_sizes, register_head
from ..tokens import Tokens, token_state

POOLS = ("cls", "mean", "attention")


def masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over dim 1 of (B, N, d), counting only positions where ``mask`` (B, N) is True."""
    if mask is None:
        return x.mean(dim=1)
    m = mask.to(x.dtype).unsqueeze(-1)
    return (x * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


def classification_output(logits: Tensor, batch: dict, label_smoothing: float = 0.0) -> dict:
    """{"logits"}, and with ``labels`` the label-smoothed cross-entropy (hard (B,) or soft (B, K)
    labels) and loss_weight = B: the contract of every classifier, heads and baselines alike."""
    out = {"logits": logits}
    labels = batch.get(LABELS)
    if labels is not None:
        target = labels.float() if labels.is_floating_point() else labels.long()
        out["loss"] = F.cross_entropy(logits.float(), target, label_smoothing=label_smoothing)
        # made on the device (a fill), not copied from the host: a copy would wait for the forward's kernels on a GPU
        out["loss_weight"] = torch.full((), labels.shape[0], dtype=torch.long, device=logits.device)
    return out


class AttentionPool(nn.Module):
    """One learned query attending over the tokens: (B, N, d) -> (B, d)."""

    def __init__(self, dim: int, n_heads: int):
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.attn = CrossAttention(dim, n_heads)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        keep = combine_masks(n_queries=1, n_keys=x.shape[1], key_padding_mask=mask, device=x.device)
        return self.attn(self.query.expand(x.shape[0], -1, -1), x, keep)[:, 0]


class ClassificationHead(nn.Module):
    """Pool, optional norm, dropout, linear. Batch key ``labels``: (B,) long or (B, K) probabilities."""

    def __init__(self, dim: int, n_classes: int, pool: str = "cls", n_heads: int = 4, norm: bool = False,
                 norm_eps: float = 1e-5, dropout: float = 0.0, label_smoothing: float = 0.0, n_channels: int = 1,
                 pooler: bool = False):
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"unknown pool {pool!r}; choose one of {', '.join(POOLS)}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.pool, self.label_smoothing, self.n_channels = pool, label_smoothing, n_channels
        self.attn_pool = AttentionPool(dim, n_heads) if pool == "attention" else None
        self.norm = make_norm("layernorm", dim, norm_eps) if norm else nn.Identity()
        self.pooler = nn.Linear(dim, dim) if pooler else None  # named as masked_lm_nsp's: BERT's pooler.dense
        self.drop = Dropout(dropout)
        self.fc = nn.Linear(dim * n_channels, n_classes)

    def pooled(self, hidden: Tensor, tokens: Tokens) -> Tensor:
        """The (B, d) vector the classifier reads ((B, C*d) for channel-independent series tokens)."""
        h = unless_idle(self.norm, self._pool(hidden, tokens))
        if self.pooler is not None:
            h = self.pooler(h).tanh()
        return h.reshape(-1, self.n_channels * h.shape[-1]) if self.n_channels > 1 else h

    def _pool(self, hidden: Tensor, tokens: Tokens) -> Tensor:
        if self.pool == "cls":
            if not tokens.state.class_token:
                raise ConfigError("model.head.args.pool=cls needs a tokenizer with a class token; set "
                                  "model.head.args.pool=mean (or attention), or model.tokenizer.args.class_token=true")
            return hidden[:, 0]
        n_prefix = tokens.state.prefix_tokens or 0
        x = hidden[:, n_prefix:]
        mask = tokens.padding_mask[:, n_prefix:] if tokens.padding_mask is not None else None
        if self.pool == "mean":
            return masked_mean(x, mask)
        return self.attn_pool(x, mask)

    def forward(self, hidden: Tensor, tokens: Tokens, batch: dict) -> dict:
        return classification_output(self.fc(unless_idle(self.drop, self.pooled(hidden, tokens))), batch,
                                     self.label_smoothing)


@register_head("classification")
def classification_head(core: CoreConfig, tokenizer: nn.Module, n_classes: int, pool: str = "cls",
                        norm: bool = False, dropout: float = 0.0, label_smoothing: float = 0.0,
                        n_heads: int | None = None, pooler: bool = False) -> ClassificationHead:
    """``pooler``: tanh(W_p h + b_p) between pooling and the classifier (BERT's; a run started from a BERT
    checkpoint that has one gets it, with its weights, unless the recipe sets pooler=false)."""
    check_sizes("model.head.args", n_classes=n_classes, n_heads=n_heads)
    layout = token_state(tokenizer)
    if layout.channel_independent is not None and pool == "cls":  # series tokens
        raise ValueError("series tokens have no class token; set head.args.pool=mean or pool=attention")
    channels = layout.n_channels if layout.channel_independent else 1
    return ClassificationHead(core.d_model, n_classes, pool, n_heads or core.n_heads, norm, core.norm_eps,
                              dropout, label_smoothing, channels, pooler)


__all__ = ["ClassificationHead", "AttentionPool", "classification_output", "masked_mean"]
