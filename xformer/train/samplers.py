"""The samplers of the training loader: a seeded permutation per epoch that a resumed run can start part-way
(``ResumableSampler``), and repeated augmentation (``RepeatedAugmentSampler``)."""
from __future__ import annotations

import itertools

import torch
from torch.utils.data import DistributedSampler


class ResumableSampler(DistributedSampler):
    """DistributedSampler (a seeded permutation per epoch, one interleaved shard per rank)
    that can start an epoch part-way, so that a resumed run sees the examples it had not seen."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        super().set_epoch(epoch)
        self.start = start

    def __iter__(self):
        return itertools.islice(super().__iter__(), self.start, None)

    def __len__(self) -> int:
        return super().__len__() - self.start


class RepeatedAugmentSampler(ResumableSampler):
    """Repeated augmentation (Hoffer et al. 2020, "Augment your batch"; DeiT's RASampler, timm's
    ``RepeatAugSampler``): each index of the epoch's seeded permutation is listed ``repeats`` times in a row,

        order = [p_0] * r + [p_1] * r + ...,   truncated to the epoch's length,

    so a batch holds r copies of each of its images, each through its own random augmentation. The epoch
    keeps its length (as many draws as examples), so it shows about len / r distinct examples, and
    ``train.epochs`` counts draws. With several processes the order is dealt out interleaved as
    DistributedSampler's, so the copies of an image land on different ranks (as timm's)."""

    def __init__(self, *args, repeats: int = 3, **kwargs):
        super().__init__(*args, **kwargs)
        self.repeats = repeats

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.dataset), generator=g).repeat_interleave(self.repeats)[:self.total_size]
        return itertools.islice(iter(order[self.rank:self.total_size:self.num_replicas].tolist()), self.start, None)


__all__ = ["ResumableSampler", "RepeatedAugmentSampler"]
