"""The optimizer step: token-weighted accumulation, NaN stop, early stopping, bf16, 2-process DDP."""
import copy
import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file

from xformer.config import from_dict
from xformer.train.checkpoint import checkpoint_dir, read_weights
from xformer.train.config import ExperimentConfig
from xformer.train.distributed import World
from xformer.train.run import build, train_run
from xformer.train.trainer import Trainer, TrainingDiverged

from train_helpers import crash_after_checkpoint

RECIPE = {  # reversal: targets of 5 to 9 tokens, so a mean of per-micro-batch means would be wrong
    "model": {"architecture": "encoder-decoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2},
              "tokenizer": {"name": "seq2seq_text"}, "head": {"name": "causal_lm"}},
    "data": {"name": "reverse_digits", "args": {"n_train": 128, "n_val": 32, "n_test": 32}},
    "train": {"steps": 4, "batch_size": 16, "lr": 1e-2, "eval_every": 2, "log_every": 2, "device": "cpu",
              "clip": None},
}


def trainer(run_dir=None, **train) -> Trainer:
    config = from_dict(ExperimentConfig, {**RECIPE, "train": {**RECIPE["train"], **train}})
    model, data = build(config)
    return Trainer(model, data, config.train, run_dir, World())


def first_step_gradients(t: Trainer) -> dict:
    """The gradients the optimizer receives on the first step (after normalisation)."""
    grads = {}

    def capture(optimizer, args, kwargs):
        grads.update({n: p.grad.clone() for n, p in t.model.named_parameters() if p.grad is not None})

    t.optimizer.register_step_pre_hook(capture)
    t.cfg.steps = t.total_steps = 1
    t.fit()
    return grads


@pytest.mark.parametrize("grad_accum", [1, 2, 4])
def test_accumulated_gradient_is_the_token_mean_over_the_global_batch(grad_accum):
    """accum k x batch B/k == the mean cross-entropy over every target token of the B examples."""
    t = trainer(grad_accum=grad_accum)
    reference = copy.deepcopy(t.model)
    got = first_step_gradients(t)

    t.sampler.set_epoch(0)
    batch = torch.utils.data.default_collate([t.data.train[i] for i in list(t.sampler)[:16]])
    reference(batch)["loss"].backward()
    for name, p in reference.named_parameters():
        assert torch.allclose(got[name], p.grad, rtol=1e-4, atol=1e-7), name
    lengths = (batch["labels"] != -100).sum(1)
    assert lengths.min() < lengths.max()  # unequal target counts: a mean of micro-batch means would differ


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path, bad):
    """Not only NaN: a loss of inf stops the run at the step it appears too, before the optimizer steps on its
    gradients (an inf step would make the weights NaN, and the message would name the next step)."""
    t = trainer(tmp_path, steps=20, eval_every=5)
    forward, calls = t.model.forward, [0]

    def poisoned(batch, cache=None):
        out = forward(batch, cache)
        calls[0] += t.model.training
        if calls[0] > 7:
            out["loss"] = out["loss"] * float(bad)
        return out

    t.model.forward = poisoned
    with pytest.raises(TrainingDiverged, match=rf"loss is {bad} at step 8; .*step_00000005"):
        t.fit()
    assert all(torch.isfinite(p).all() for p in t.model.parameters())
    weights = read_weights(checkpoint_dir(tmp_path / "checkpoints"))
    assert checkpoint_dir(tmp_path / "checkpoints").name == "step_00000005"
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_early_stopping_stops_when_the_metric_stops_improving():
    t = trainer(steps=40, eval_every=2, early_stopping={"metric": "val_loss", "mode": "max", "patience": 2})
    t.fit()  # the loss falls, so "max" never improves after the first evaluation
    assert t.step == 6 and t.best_step == 2


def test_max_seconds_stops_with_a_last_evaluation_and_checkpoint(tmp_path):
    t = trainer(tmp_path, steps=10**6, eval_every=10**5, max_seconds=0.5)
    t.fit()
    assert 0 < t.step < 10**6 and t.best_step == t.step  # evaluated once, at the step it stopped
    assert checkpoint_dir(tmp_path / "checkpoints", "latest").name.endswith(f"{t.step:08d}")


def test_bf16_autocast_trains():
    t = trainer(precision="bf16", steps=2)
    t.fit()
    assert all(torch.isfinite(p).all() and p.dtype == torch.float32 for p in t.model.parameters())
    assert torch.isfinite(torch.tensor(t.evaluate("val")["loss"]))


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_equal_one_with_the_same_global_batch(tmp_path, strategy):
    recipe = tmp_path / "reverse.yaml"
    recipe.write_text(yaml.safe_dump({**RECIPE, "train": {**RECIPE["train"], "distributed": strategy}}))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "xformer", "train", str(recipe), "--out", str(tmp_path / "two")],
                            capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    train_run(from_dict(ExperimentConfig, yaml.safe_load(recipe.read_text())), tmp_path / "one")
    one = load_file(checkpoint_dir(tmp_path / "one" / "checkpoints") / "model.safetensors")
    two = load_file(checkpoint_dir(tmp_path / "two" / "checkpoints") / "model.safetensors")
    assert one.keys() == two.keys()
    for key in one:
        assert torch.allclose(one[key], two[key], atol=1e-5), key


def test_torch_compile_trains_to_the_same_weights_as_eager():
    """train.compile wraps the model in torch.compile; on CPU the first step compiles (~1 minute here)."""
    eager, compiled = trainer(steps=3), trainer(steps=3, compile=True)
    eager.fit()
    compiled.fit()
    for (name, a), (_, b) in zip(eager.model.named_parameters(), compiled.model.named_parameters()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=name)


def test_tensorboard_gets_the_same_scalars_as_metrics_jsonl(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train_run(from_dict(ExperimentConfig, {**RECIPE, "train": {**RECIPE["train"], "steps": 4}}), tmp_path)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    val = [(r["step"], r["val_loss"]) for r in logged if "val_loss" in r]
    board = [(e.step, e.value) for e in events.Scalars("val/loss")]
    assert len(val) == len(board) > 0
    for (s1, v1), (s2, v2) in zip(val, board):
        assert s1 == s2 and v1 == pytest.approx(v2, rel=1e-6)


@pytest.mark.parametrize("mode, values", [("min", [3.0, 2.0, 2.0, 2.5]), ("max", [1.0, 2.0, 2.0, 1.5])])
def test_early_stopping_counts_an_equal_value_as_no_improvement(mode, values):
    """Improvement is strict (Keras' and Lightning's rule): a tie keeps the earlier best step (the best
    checkpoint) and counts towards the patience."""
    t = trainer(early_stopping={"metric": "val_loss", "mode": mode, "patience": 2})
    stops = []
    for step, value in enumerate(values, 1):
        t.step = step
        stops.append(t._track({"val_loss": value}))
    assert (t.best, t.best_step, t.bad_evals) == (values[1], 2, 2)
    assert stops == [False, False, False, True]


def test_a_resumed_run_keeps_its_count_of_evaluations_without_improvement(tmp_path, monkeypatch):
    """The evaluations without improvement before an interruption still count after it: the resumed run
    stops where the uninterrupted one does, not ``patience`` evaluations after the resume."""
    stopping = {"metric": "val_loss", "mode": "max", "patience": 2}  # the loss falls: no improvement after step 2
    whole = trainer(steps=40, eval_every=2, early_stopping=stopping)
    whole.fit()
    crash_after_checkpoint(monkeypatch, 4, lambda: trainer(tmp_path, steps=40, eval_every=2,
                                                            early_stopping=stopping).fit())
    monkeypatch.undo()
    cut = trainer(tmp_path, steps=40, eval_every=2, early_stopping=stopping)
    cut.resume()
    assert cut.bad_evals == 1
    cut.fit()
    assert (cut.step, cut.best_step) == (whole.step, whole.best_step) == (6, 2)
