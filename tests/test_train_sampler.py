"""The trainer's samplers: a seeded permutation per epoch that can start part-way, and repeated augmentation."""
import pytest
import torch
from torch.utils.data import DistributedSampler

from train_helpers import experiment
from xformer.config import ConfigError
from xformer.train.distributed import World
from xformer.train.run import build
from xformer.train.trainer import RepeatedAugmentSampler, ResumableSampler, Trainer


def test_repeated_augment_lists_each_drawn_index_r_times_in_a_row_and_keeps_the_epoch_length():
    data = list(range(10))
    sampler = RepeatedAugmentSampler(data, num_replicas=1, rank=0, seed=0, drop_last=True, repeats=3)
    sampler.set_epoch(0)
    order = list(sampler)
    assert len(order) == len(sampler) == 10
    assert [order[i] for i in range(0, 9, 3)] == [order[i + 1] for i in range(0, 9, 3)] == \
        [order[i + 2] for i in range(0, 9, 3)]
    assert order[9] not in order[:9] and len(set(order)) == 4         # ceil(10 / 3) distinct examples
    assert order[::3] == torch.randperm(10, generator=torch.Generator().manual_seed(0)).tolist()[:4]
    sampler.set_epoch(1)
    assert list(sampler) != order                                      # a new permutation every epoch
    sampler.set_epoch(0, start=4)
    assert list(sampler) == order[4:]                                  # a resumed epoch goes on where it was


def test_repeated_augment_deals_the_copies_to_different_processes():
    data = list(range(12))
    ranks = [RepeatedAugmentSampler(data, num_replicas=3, rank=r, seed=5, drop_last=True, repeats=3) for r in range(3)]
    orders = [list(s) for s in ranks]
    assert orders[0] == orders[1] == orders[2]                         # copy k of each image on rank k
    assert len(set(orders[0])) == 4 and all(len(o) == 4 for o in orders)


def test_without_repeats_the_trainer_keeps_the_distributed_sampler_order():
    config = experiment(steps=2)
    t = Trainer(*build(config), config.train, None, World())
    assert type(t.sampler) is ResumableSampler
    reference = DistributedSampler(t.data.train, num_replicas=1, rank=0, shuffle=True, seed=config.train.seed,
                                   drop_last=True)
    assert list(t.sampler) == list(reference)


def test_trainer_batches_hold_r_differently_augmented_copies_of_each_image():
    config = experiment({"model": {"architecture": "encoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2},
                                   "tokenizer": {"name": "image_conv", "args": {}},
                                   "head": {"name": "classification", "args": {"pool": "attention"}}},
                         "data": {"name": "digits", "args": {"affine": True}},
                         "train": {"steps": 2, "batch_size": 48, "device": "cpu"}}, aug_repeats=3)
    t = Trainer(*build(config), config.train, None, World())
    assert isinstance(t.sampler, RepeatedAugmentSampler) and t.sampler.repeats == 3
    t.sampler.set_epoch(0)
    order = list(t.sampler)[:48]
    torch.manual_seed(0)
    batch = next(iter(t.loader))
    images, labels = batch["images"], batch["labels"]
    assert torch.equal(labels, t.data.train.labels[order])
    # small shifts and rotations of an 8x8 image with nearest pixels can come out as the identity, so count:
    # the copies of an image must differ from each other in most triples
    differ = [not torch.equal(images[i], images[i + 1]) or not torch.equal(images[i + 1], images[i + 2])
              for i in range(0, 48, 3)]
    assert sum(differ) >= 12, f"{sum(differ)} of 16 triples hold different copies"


@pytest.mark.parametrize("value", [0, -1, 1.5])
def test_aug_repeats_must_be_a_whole_number_of_at_least_one(value):
    with pytest.raises(ConfigError, match="train.aug_repeats") as e:
        experiment(aug_repeats=value)
    assert "\n" not in str(e.value)
