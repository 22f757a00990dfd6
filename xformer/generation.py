"""Decoding with the KV cache: each step feeds only the newest token."""
from __future__ import annotations

import torch
from torch import Tensor

from .models import Model


@torch.no_grad()
def greedy(model: Model, batch: dict, max_new_tokens: int, eos_id: int | None = None) -> Tensor:
    """Append ``max_new_tokens`` argmax tokens to ``batch["input_ids"]`` (B, N); return the new tokens.

    Rows that produced ``eos_id`` keep producing it. The prompt is run once;
    every later step runs one position through the cache.
    """
    model.eval()
    cache = model.new_cache()
    step_batch = dict(batch)
    out = []
    done = torch.zeros(batch["input_ids"].shape[0], dtype=torch.bool, device=batch["input_ids"].device)
    for _ in range(max_new_tokens):
        logits = model(step_batch, cache=cache)["logits"][:, -1]
        token = logits.argmax(-1)
        if eos_id is not None:
            token = token.masked_fill(done, eos_id)
            done |= token == eos_id
        out.append(token)
        step_batch["input_ids"] = token[:, None]
        if "attention_mask" in step_batch:
            mask = step_batch["attention_mask"]
            step_batch["attention_mask"] = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        if eos_id is not None and bool(done.all()):
            break
    return torch.stack(out, dim=1)
