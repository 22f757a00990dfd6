"""What the run-folder tests share: a tiny recipe whose exact resumption needs the RNG, and a crash."""
import os

import pytest
import torch

from xformer.config import from_dict
from xformer.train.config import ExperimentConfig
from xformer.train.trainer import Trainer

# The CPU unless XFORMER_TEST_TRAIN_DEVICE names another: benchmarks/gpu_check.sh runs the resume tests on a GPU.
DEVICE = os.environ.get("XFORMER_TEST_TRAIN_DEVICE", "cpu")

RECIPE = {  # a 1-layer decoder with dropout (resumption needs the restored RNG) and a tied LM head
    "model": {"architecture": "decoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2, "dropout": 0.1},
              "tokenizer": {"name": "text"}, "head": {"name": "causal_lm"}},
    "data": {"name": "copy_digits", "args": {"n_train": 200, "n_val": 32, "n_test": 32, "length": 4}},
    "train": {"steps": 30, "batch_size": 16, "lr": 1e-2, "warmup_steps": 3, "eval_every": 5, "log_every": 5,
              "keep_last": 2, "deterministic": True, "device": DEVICE,
              "early_stopping": {"metric": "val_token_accuracy", "mode": "max"}},
}


def experiment(recipe: dict = RECIPE, **train) -> ExperimentConfig:
    return from_dict(ExperimentConfig, {**recipe, "train": {**recipe["train"], **train}})


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def crash_after_checkpoint(monkeypatch, step: int, run) -> None:
    """Call ``run()`` with training interrupted (KeyboardInterrupt) right after the checkpoint of ``step``."""
    save = Trainer.save

    def save_then_crash(self):
        save(self)
        if self.step == step:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "save", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        run()
    monkeypatch.setattr(Trainer, "save", save)


def fit_on_tensors(model, images, labels, steps: int = 400, peak: float = 3e-3, batch: int = 64) -> float:
    """A classifier trained on random batches of (images, labels) by AdamW with one-cycle lr; returns the seconds."""
    import time

    opt = torch.optim.AdamW(model.parameters(), lr=peak, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=peak, total_steps=steps, pct_start=0.1)
    start = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, len(images), (batch,))
        loss = model({"images": images[idx], "labels": labels[idx]})["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return time.perf_counter() - start
