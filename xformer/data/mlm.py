"""BERT's masking rule for masked-language-model training (Devlin et al. 2019, Sec. 3.1).

Each non-special token is chosen as a prediction target with probability 15%.
A chosen token is then replaced by

    [MASK]          with probability 80%,
    a random token  with probability 10%,
    itself          with probability 10%,

so the model cannot learn that only [MASK] positions matter. Labels hold the
original id at chosen positions and -100 (ignored by the loss) everywhere
else. This is the rule of Hugging Face's ``DataCollatorForLanguageModeling``.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from ..heads.lm import IGNORE_INDEX


def mask_tokens(ids: Tensor, mask_id: int, vocab_size: int, special_ids: Iterable[int] = (),
                generator: torch.Generator | None = None, mlm_probability: float = 0.15,
                mask_fraction: float = 0.8, random_fraction: float = 0.1) -> tuple[Tensor, Tensor]:
    """Return ``(input_ids, labels)`` for ids (B, N) following the 15% / 80-10-10 rule.

    ``special_ids`` ([CLS], [SEP], [PAD], ...) are never chosen. Random
    replacements are drawn uniformly from the whole vocabulary. ``ids`` is not
    modified.
    """
    if not 0.0 <= mask_fraction + random_fraction <= 1.0:
        raise ValueError("mask_fraction + random_fraction must be in [0, 1]")
    device = ids.device

    def uniform() -> Tensor:
        return torch.rand(ids.shape, generator=generator, device=device)

    special = torch.zeros_like(ids, dtype=torch.bool)
    for s in special_ids:
        special |= ids == s
    chosen = (uniform() < mlm_probability) & ~special
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE_INDEX))

    u = uniform()  # one draw decides mask / random / keep for each chosen token
    to_mask = chosen & (u < mask_fraction)
    to_random = chosen & (u >= mask_fraction) & (u < mask_fraction + random_fraction)
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator, device=device, dtype=ids.dtype)
    input_ids = torch.where(to_mask, torch.full_like(ids, mask_id), ids)
    input_ids = torch.where(to_random, random_ids, input_ids)
    return input_ids, labels


__all__ = ["mask_tokens"]
