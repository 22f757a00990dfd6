"""Tiny models must actually learn: greedy decoding (through the KV cache) on unseen sequences."""
import torch

from xformer.data.synthetic import BOS, PAD, SEP, copy_batch, reverse_batch
from xformer.demo import train_copy, train_reversal


def test_reverse_batch_is_well_formed():
    b = reverse_batch(16, generator=torch.Generator().manual_seed(0))
    for i in range(16):
        n = int(b["src_mask"][i].sum())
        digits = b["src_ids"][i, :n]
        assert (b["src_ids"][i, n:] == PAD).all()
        assert b["labels"][i, :n].tolist() == digits.flip(0).tolist()
        assert b["labels"][i, n].item() == SEP and (b["labels"][i, n + 1:] == -100).all()
        assert b["input_ids"][i, 0].item() == BOS
        assert b["input_ids"][i, 1: n + 1].tolist() == b["labels"][i, :n].tolist()


def test_copy_batch_is_well_formed():
    b = copy_batch(4, length=5)
    assert (b["input_ids"][:, 5] == SEP).all()
    assert torch.equal(b["labels"][:, 5:-1], b["input_ids"][:, :5])
    assert (b["labels"][:, :5] == -100).all() and (b["labels"][:, -1] == -100).all()


def test_encoder_decoder_learns_to_reverse_digits():
    _, accuracy = train_reversal(steps=600, seed=0)
    assert accuracy >= 0.99


def test_decoder_learns_to_copy_digits():
    _, accuracy = train_copy(steps=600, seed=0)
    assert accuracy >= 0.99
