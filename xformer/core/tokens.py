"""The one thing a tokenizer hands to the core."""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class Tokens:
    """Token embeddings (B, N, d) with what the core and the head need besides.

    padding_mask: (B, N) bool, True = real token; None when every token is real.
    source: the encoder's tokens, for encoder-decoder models.
    state: whatever the head must undo or read (e.g. RevIN mean and std, the
        number of prefix tokens such as [CLS] or registers).
    """

    x: Tensor
    padding_mask: Tensor | None = None
    source: "Tokens | None" = None
    state: dict = field(default_factory=dict)
