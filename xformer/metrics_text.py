"""Text metrics, from a mean cross-entropy in nats (what the LM heads return as ``loss``).

    perplexity         PPL = exp(CE)                     CE = mean -ln p(y_t) per token
    bits per token     BPT = CE / ln 2
    bits per character BPC = (CE * n_tokens) / (n_chars * ln 2)   total nats over the text, per character, in bits
    masked-LM accuracy = mean over positions with label != -100 of [argmax logits == label]

For a character-level model n_tokens == n_chars and BPC = CE / ln 2.
"""
from __future__ import annotations

import math

from torch import Tensor

from .heads.lm import IGNORE_INDEX


def perplexity(mean_ce: float) -> float:
    """exp(CE); ``inf`` rather than an OverflowError for a hopeless model."""
    try:
        return math.exp(mean_ce)
    except OverflowError:
        return float("inf")


def bits_per_token(mean_ce: float) -> float:
    return mean_ce / math.log(2)


def bits_per_character(mean_ce: float, n_tokens: int, n_chars: int) -> float:
    """Total information content of the text in bits, divided by its number of characters."""
    if n_chars <= 0:
        raise ValueError("bits per character needs n_chars > 0")
    return mean_ce * n_tokens / (n_chars * math.log(2))


def masked_lm_accuracy(logits: Tensor, labels: Tensor) -> tuple[float, int]:
    """(accuracy, number of scored positions) over the positions with a label (!= -100)."""
    scored = labels != IGNORE_INDEX
    n = int(scored.sum())
    if n == 0:
        return float("nan"), 0
    correct = (logits.argmax(-1) == labels) & scored
    return float(correct.sum()) / n, n


__all__ = ["perplexity", "bits_per_token", "bits_per_character", "masked_lm_accuracy"]
