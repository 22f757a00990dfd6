"""train.ema: the moving average of the weights, what evaluates it, its checkpoints and exact resumption."""
import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file

import train_helpers
from train_helpers import assert_same_tensors as assert_same
from train_helpers import crash_after_checkpoint
from xformer.config import ConfigError, from_dict
from xformer.train.checkpoint import CheckpointError, checkpoint_dir
from xformer.train.config import Ema, ExperimentConfig
from xformer.train.distributed import World
from xformer.train.ema import WeightAverage
from xformer.train.run import build, evaluate_run, load_run, train_run
from xformer.train.trainer import Trainer

# the shared tiny decoder (its tied LM head must be averaged once, not twice), with the average on
RECIPE = {**train_helpers.RECIPE, "train": {**train_helpers.RECIPE["train"], "ema": {"enabled": True, "decay": 0.8}}}


@pytest.fixture(autouse=True)
def _restore_determinism():
    deterministic = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(deterministic)


def config(**train) -> ExperimentConfig:
    return train_helpers.experiment(RECIPE, **train)


def trainer(run_dir=None, **train) -> Trainer:
    cfg = config(**train)
    model, data = build(cfg)
    return Trainer(model, data, cfg.train, run_dir, World())


def checkpoint_files(run_dir, which="latest") -> tuple[dict, dict]:
    path = checkpoint_dir(run_dir / "checkpoints", which)
    return load_file(path / "model.safetensors"), load_file(path / "ema.safetensors")


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    """One uninterrupted 30-step run with train.ema (decay 0.8), shared by the tests below."""
    # set up before conftest's per-test fixture: one thread here too, so that sums add up in the same order
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("ema") / "whole"
    train_run(config(), run)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
    return run


@pytest.mark.parametrize("warmup", [False, True])
def test_the_average_after_k_steps_is_the_formula_over_the_recorded_weights(warmup):
    """theta_ema <- d_t theta_ema + (1 - d_t) theta_t, d_1 = 0, d_t = 0.5 (or min(0.5, 1 - t^-0.75))."""
    t = trainer(steps=4, ema={"enabled": True, "decay": 0.5, "warmup": warmup, "warmup_power": 0.75})
    recorded = []  # the trained weights after each optimizer step
    t.optimizer.register_step_post_hook(
        lambda *_: recorded.append({n: p.detach().clone() for n, p in t.model.named_parameters()}))
    t.fit()
    assert len(recorded) == 4
    average = {}
    for step, theta in enumerate(recorded, 1):
        d = 0.0 if step == 1 else min(0.5, 1 - step ** -0.75) if warmup else 0.5
        average = {n: d * average[n] + (1 - d) * w if average else w for n, w in theta.items()}
    ema = dict(t.ema.module.named_parameters())
    assert ema.keys() == average.keys()
    for name in average:
        torch.testing.assert_close(ema[name], average[name], rtol=0, atol=1e-6, msg=name)
    assert not torch.equal(ema["core.blocks.0.attn.qkv.weight"], recorded[-1]["core.blocks.0.attn.qkv.weight"])


def test_the_average_leaves_training_alone_and_is_what_evaluate_measures():
    averaged = trainer(steps=6)
    averaged.fit()
    plain = trainer(steps=6, ema={"enabled": False})  # built (and seeded) after the first one trained
    plain.fit()
    assert_same(averaged.model.state_dict(), plain.model.state_dict())  # the trained weights are unchanged
    with_ema, raw = averaged.evaluate("val"), plain.evaluate("val")
    assert with_ema["loss"] != raw["loss"]
    plain.model.load_state_dict(averaged.ema.module.state_dict())
    assert with_ema == plain.evaluate("val")  # an evaluation of the averaged weights themselves


def test_checkpoints_hold_both_and_the_run_is_judged_on_the_average(ema_run):
    latest = checkpoint_dir(ema_run / "checkpoints")
    state = json.loads((latest / "state.json").read_text())
    assert set(state["files"]) == {"model.safetensors", "ema.safetensors", "trainer.pt"}
    weights, ema = checkpoint_files(ema_run)
    assert weights.keys() == ema.keys() and "head.proj.weight" not in ema  # the tied head stored once, in both
    assert any(not torch.equal(weights[k], ema[k]) for k in weights)

    # the val metrics logged during training (which pick the best checkpoint) are the average's
    logged = [json.loads(line) for line in (ema_run / "metrics.jsonl").read_text().splitlines()]
    logged = next(line for line in logged if line["step"] == 30 and "val_loss" in line)
    judge = trainer(ema={"enabled": False})
    judge.model.load_state_dict(ema, strict=False)
    assert logged["val_loss"] == judge.evaluate("val")["loss"]

    # load_run / evaluate_run (xformer evaluate) read the best checkpoint's average
    _, model, _ = load_run(ema_run)
    best = checkpoint_dir(ema_run / "checkpoints", "best")
    assert_same({k: v for k, v in model.state_dict().items() if k != "head.proj.weight"},
                load_file(best / "ema.safetensors"))
    final = json.loads((ema_run / "metrics.json").read_text())
    again = evaluate_run(ema_run)
    for key in ("val_loss", "val_token_accuracy", "test_loss", "test_token_accuracy"):
        assert again[key] == pytest.approx(final[key], abs=1e-6), key


def test_an_interrupted_ema_run_resumes_bit_identically(ema_run, tmp_path, monkeypatch):
    crash_after_checkpoint(monkeypatch, 15, lambda: train_run(config(), tmp_path / "cut"))
    metrics = train_run(config(), tmp_path / "cut", resume=True)
    for which in ("latest", "best"):
        for whole, cut in zip(checkpoint_files(ema_run, which), checkpoint_files(tmp_path / "cut", which)):
            assert_same(whole, cut)
    assert metrics["test_loss"] == json.loads((ema_run / "metrics.json").read_text())["test_loss"]


def test_resuming_a_run_without_an_average_with_one_names_the_fix(tmp_path):
    train_run(config(steps=5, ema={"enabled": False}), tmp_path)
    assert not (checkpoint_dir(tmp_path / "checkpoints") / "ema.safetensors").exists()  # off: files as before
    with pytest.raises(ConfigError, match="--resume cannot change train.ema"):  # the checkpoint records it
        train_run(config(steps=10), tmp_path, resume=True)
    trainer = Trainer(*build(config(steps=10)), config(steps=10).train, tmp_path, World())
    with pytest.raises(CheckpointError, match="no ema.safetensors.*train.ema.enabled=false"):
        trainer.resume()  # the Trainer alone, without the run's recorded config


def test_bad_settings_and_fsdp_are_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"train.ema.decay must be in \[0, 1\)"):
        config(ema={"enabled": True, "decay": 1.0})
    cfg = config(distributed="fsdp")
    model, data = build(cfg)
    with pytest.raises(ConfigError, match="train.ema needs the whole model on every process"):
        Trainer(model, data, cfg.train, None, World(rank=0, size=2))  # refused before any sharding


@pytest.mark.skipif(train_helpers.DEVICE != "cpu" and torch.cuda.device_count() < 2,
                    reason="two DDP processes on a GPU need two GPUs (one process per GPU)")
def test_two_ddp_processes_average_like_one(tmp_path):
    recipe = tmp_path / "copy.yaml"
    train = {**RECIPE["train"], "steps": 6, "eval_every": 3, "deterministic": False, "ema": {"enabled": True,
                                                                                           "decay": 0.5}}
    recipe.write_text(yaml.safe_dump({**RECIPE, "model": {**RECIPE["model"], "core": {
        **RECIPE["model"]["core"], "dropout": 0.0}}, "train": train}))
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "xformer", "train", str(recipe), "--out", str(tmp_path / "two")],
                            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    train_run(from_dict(ExperimentConfig, yaml.safe_load(recipe.read_text())), tmp_path / "one")
    for one, two in zip(checkpoint_files(tmp_path / "one"), checkpoint_files(tmp_path / "two")):
        assert one.keys() == two.keys()
        for key in one:
            torch.testing.assert_close(one[key], two[key], atol=1e-5, rtol=0, msg=key)


def test_batchnorm_statistics_are_averaged_with_the_weights():
    """Floating buffers (running mean / var) follow the same average as the weights, so the averaged
    BatchNorm normalises with statistics of the averaged model; num_batches_tracked is copied."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    average = WeightAverage(model, Ema(enabled=True, decay=0.5))
    expected = {}
    for step in range(1, 5):
        model(torch.randn(8, 3) + step)  # training mode: the running statistics move
        with torch.no_grad():
            model[0].weight.add_(0.1)
        average.update(model, step)
        d = 0.0 if step == 1 else 0.5
        for name, value in model.state_dict().items():
            if value.is_floating_point():
                expected[name] = value.clone() if step == 1 else d * expected[name] + (1 - d) * value
    state = average.module.state_dict()
    for name, value in expected.items():
        torch.testing.assert_close(state[name], value, rtol=0, atol=1e-6, msg=name)
    assert not torch.equal(state["1.running_mean"], model[1].running_mean)  # averaged, not copied
    assert state["1.num_batches_tracked"].item() == 4
    assert not average.module.training and not any(p.requires_grad for p in average.module.parameters())


def test_the_report_of_a_run_judged_at_its_last_step_is_the_average_s(tmp_path):
    """The final metrics of a run whose best checkpoint is its last reuse that step's evaluation (of the
    average); the report (confusion matrix) must come from the same weights, not from the live ones."""
    recipe = {"model": {"architecture": "encoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
                        "tokenizer": {"name": "image_patches", "args": {"patch_size": 4}},
                        "head": {"name": "classification"}},
              "data": {"name": "digits", "args": {}},
              "train": {"steps": 30, "eval_every": 30, "batch_size": 32, "lr": 3e-3, "warmup_steps": 0,
                        "ema": {"enabled": True, "decay": 0.999}}}  # the average stays near the initial weights
    metrics = train_run(from_dict(ExperimentConfig, recipe), tmp_path / "run")
    assert metrics["best_step"] == metrics["steps"] == 30
    report = json.loads((tmp_path / "run" / "test_classification.json").read_text())
    assert report["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert metrics["test_accuracy"] == pytest.approx(evaluate_run(tmp_path / "run")["test_accuracy"])
