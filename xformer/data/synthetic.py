"""Small algorithmic tasks that prove a model can learn: copy and reverse digit sequences.

Vocabulary: digits 0-9, then BOS=10, SEP=11 (also end of sequence), PAD=12.
Registered as the datasets "reverse_digits" and "copy_digits" (tasks/reverse.yaml, tasks/copy.yaml),
whose metric is greedy-decoded token accuracy through the KV cache.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..batch import INPUT_IDS, LABELS, SRC_IDS, SRC_MASK
from ..generation.decoding import greedy
from ..heads.lm import IGNORE_INDEX
from ..registry import check_min_max, check_sizes
from .registry import DataBundle, register_data

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
        SRC_IDS: src, SRC_MASK: real,
        INPUT_IDS: dec_in, LABELS: target.masked_fill(~tgt_real, IGNORE_INDEX),
    }


def copy_batch(batch_size: int, length: int = 8, generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Decoder-only batch: ``x SEP x``; the loss is on predicting the second copy."""
    digits = torch.randint(0, 10, (batch_size, length), generator=generator)
    ids = torch.cat([digits, torch.full((batch_size, 1), SEP), digits], dim=1)
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[:, length:-1] = ids[:, length + 1:]
    return {INPUT_IDS: ids, LABELS: labels}


# ---- greedy-decoding accuracy (the metric of both tasks) ----------------------------------------------------
def reverse_hits(model, batch: dict[str, Tensor]) -> tuple[int, int]:
    """(correct, total) greedy-decoded target tokens (the digits and the final SEP), decoding from BOS alone."""
    n = batch[SRC_IDS].shape[0]
    prompt = {SRC_IDS: batch[SRC_IDS], SRC_MASK: batch[SRC_MASK],
              INPUT_IDS: torch.full((n, 1), BOS, device=batch[SRC_IDS].device)}
    predicted = greedy(model, prompt, max_new_tokens=batch[LABELS].shape[1])
    real = batch[LABELS] != IGNORE_INDEX
    return int((predicted[real] == batch[LABELS][real]).sum()), int(real.sum())


def copy_hits(model, batch: dict[str, Tensor]) -> tuple[int, int]:
    """(correct, total) greedy-decoded tokens of the second copy, given ``x SEP``."""
    length = (batch[INPUT_IDS].shape[1] - 1) // 2
    predicted = greedy(model, {INPUT_IDS: batch[INPUT_IDS][:, : length + 1]}, max_new_tokens=length)
    target = batch[INPUT_IDS][:, length + 1:]
    return int((predicted == target).sum()), target.numel()


def token_accuracy(hits):
    """DataBundle.evaluate for a task whose ``hits(model, batch)`` counts correct greedy tokens."""
    def evaluate(model, batches) -> dict[str, float]:
        correct = total = 0
        for batch in batches:
            c, t = hits(model, batch)
            correct, total = correct + c, total + t
        return {"token_accuracy": correct / max(total, 1)}
    return evaluate


# ---- registered datasets ------------------------------------------------------------------------------------
class BatchDataset(Dataset):
    """A map-style view of one big batch dict: item i is {key: value[i]}."""

    def __init__(self, batch: dict[str, Tensor]):
        self.batch = batch

    def __len__(self) -> int:
        return len(next(iter(self.batch.values())))

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {key: value[i] for key, value in self.batch.items()}


def _splits(make, sizes: tuple[int, int, int], seed: int) -> dict[str, BatchDataset | None]:
    """Train / val / test drawn from independent generators (seed, seed + 1, seed + 2); a size of 0 leaves
    that evaluation split out (None), as an empty one would have nothing to average."""
    check_sizes("data.args", n_train=sizes[0])
    check_sizes("data.args", minimum=0, n_val=sizes[1], n_test=sizes[2])
    return {name: BatchDataset(make(n, torch.Generator().manual_seed(seed + i))) if n else None
            for i, (name, n) in enumerate(zip(("train", "val", "test"), sizes))}


@register_data("reverse_digits")
def reverse_digits(n_train: int = 38400, n_val: int = 512, n_test: int = 512, min_len: int = 4, max_len: int = 8,
                   seed: int = 0) -> DataBundle:
    """Encoder-decoder task: read digits, write them reversed then SEP. Metric: greedy token accuracy."""
    check_min_max("data.args", "min_len", min_len, "max_len", max_len)
    splits = _splits(lambda n, g: reverse_batch(n, min_len, max_len, g), (n_train, n_val, n_test), seed)
    return DataBundle(**splits, evaluate=token_accuracy(reverse_hits),
                      model_args={"tokenizer": {"vocab_size": VOCAB_SIZE, "max_positions": max_len + 1}})


@register_data("copy_digits")
def copy_digits(n_train: int = 38400, n_val: int = 512, n_test: int = 512, length: int = 8,
                seed: int = 0) -> DataBundle:
    """Decoder task: after ``x SEP`` write x again. Metric: greedy token accuracy."""
    check_sizes("data.args", length=length)
    splits = _splits(lambda n, g: copy_batch(n, length, g), (n_train, n_val, n_test), seed)
    return DataBundle(**splits, evaluate=token_accuracy(copy_hits),
                      model_args={"tokenizer": {"vocab_size": VOCAB_SIZE, "max_positions": 2 * length + 1}})
