"""Small algorithmic tasks that prove a model can learn: copy and reverse digit sequences.

Vocabulary: digits 0-9, then BOS=10, SEP=11 (also end of sequence), PAD=12.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..heads.lm import IGNORE_INDEX

BOS, SEP, PAD = 10, 11, 12
VOCAB_SIZE = 13


def reverse_batch(batch_size: int, min_len: int = 4, max_len: int = 8, generator: torch.Generator | None = None
                  ) -> dict[str, Tensor]:
    """Encoder-decoder batch: source digits (right-padded), target = the digits reversed, then SEP.

    Decoder input is the target shifted right behind BOS (teacher forcing).
    """
    lengths = torch.randint(min_len, max_len + 1, (batch_size,), generator=generator)
    digits = torch.randint(0, 10, (batch_size, max_len), generator=generator)
    positions = torch.arange(max_len)
    real = positions[None] < lengths[:, None]
    src = digits.masked_fill(~real, PAD)
    reversed_idx = (lengths[:, None] - 1 - positions[None]).clamp(min=0)
    target = torch.gather(digits, 1, reversed_idx).masked_fill(~real, PAD)
    target = torch.cat([target, torch.full((batch_size, 1), PAD)], dim=1)
    target[torch.arange(batch_size), lengths] = SEP
    tgt_real = torch.arange(max_len + 1)[None] <= lengths[:, None]  # the digits and their SEP
    dec_in = torch.cat([torch.full((batch_size, 1), BOS), target[:, :-1]], dim=1)
    return {
        "src_ids": src, "src_mask": real,
        "input_ids": dec_in, "labels": target.masked_fill(~tgt_real, IGNORE_INDEX),
    }


def copy_batch(batch_size: int, length: int = 8, generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Decoder-only batch: ``x SEP x``; the loss is on predicting the second copy."""
    digits = torch.randint(0, 10, (batch_size, length), generator=generator)
    ids = torch.cat([digits, torch.full((batch_size, 1), SEP), digits], dim=1)
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[:, length:-1] = ids[:, length + 1:]
    return {"input_ids": ids, "labels": labels}
