"""Tiny models must actually learn: greedy decoding (through the KV cache) on unseen sequences."""
import contextlib
import io

import pytest
import torch

import xformer.demo
from xformer.cli import main
from xformer.data.synthetic import BOS, PAD, SEP, copy_batch, reverse_batch


@pytest.fixture(scope="module")
def demo():
    """`xformer demo` once, in this process, with its defaults (600 steps, seed 0): its exit status, its stdout
    and the results xformer.demo.main returned. Its two models are train_reversal(600, 0) and
    train_copy(600, 0) exactly (build() seeds each from the recipe), so the two learning tests below read
    their accuracies here instead of training both models a second time."""
    results, out = {}, io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        real = xformer.demo.main
        patch.setattr(xformer.demo, "main", lambda *a, **k: results.update(real(*a, **k)) or results)
        with contextlib.redirect_stdout(out):
            status = main(["demo"])
    return status, out.getvalue(), results


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


def test_encoder_decoder_learns_to_reverse_digits(demo):
    accuracy = demo[2]["reverse digits (encoder-decoder)"]["token_accuracy"]
    assert accuracy >= 0.99


def test_decoder_learns_to_copy_digits(demo):
    accuracy = demo[2]["copy digits (decoder)"]["token_accuracy"]
    assert accuracy >= 0.99


def test_demo_runs_and_learns(demo):
    """`xformer demo` (in this process: the console entry point is test_cli.py's, which runs demo too)."""
    status, stdout, _ = demo
    assert status == 0
    assert "reverse digits" in stdout and "copy digits" in stdout
