"""Experiment configs, overrides, parameter groups and learning-rate schedules."""
import math
import subprocess
import sys

import pytest
import torch
import yaml

from xformer.config import ConfigError, from_dict
from xformer.train.config import ExperimentConfig, TrainConfig, apply_overrides
from xformer.train.optim import build_optimizer, build_scheduler, param_groups


def lr_curve(config: TrainConfig, total: int, steps_per_epoch: int = 10) -> list[float]:
    model = torch.nn.Linear(2, 2)
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, total, steps_per_epoch)
    lrs = []
    for _ in range(total):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_warmup_then_cosine_matches_its_formula():
    c = TrainConfig(steps=50, lr=1.0, min_lr=0.1, warmup_steps=10, schedule="cosine")
    want = [(1 / 11 + (1 - 1 / 11) * t / 10) if t < 10 else 0.1 + 0.9 * (1 + math.cos(math.pi * (t - 10) / 40)) / 2
            for t in range(50)]
    assert lr_curve(c, 50) == pytest.approx(want, abs=1e-9)


def test_linear_decay_is_hugging_face_s_and_reaches_min_lr():
    """Without warmup, transformers' get_linear_schedule_with_warmup (lr (T - t) / T) step for step; with a floor,
    lr - (lr - min_lr) t / T after the warmup, then min_lr held (a resume past T keeps it)."""
    transformers = pytest.importorskip("transformers")
    reference = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
    hf = transformers.get_linear_schedule_with_warmup(reference, num_warmup_steps=0, num_training_steps=40)
    want = []
    for _ in range(40):
        want.append(reference.param_groups[0]["lr"])
        reference.step(), hf.step()
    assert lr_curve(TrainConfig(steps=40, lr=0.3, schedule="linear"), 40) == pytest.approx(want, abs=1e-12)
    c = TrainConfig(steps=30, lr=1.0, min_lr=0.1, warmup_steps=10, schedule="linear")
    want = [(1 / 11 + (1 - 1 / 11) * t / 10) if t < 10 else 1.0 - 0.9 * (t - 10) / 20 for t in range(30)]
    assert lr_curve(c, 30) == pytest.approx(want, abs=1e-9)
    optimizer = build_optimizer(torch.nn.Linear(2, 2), c)
    scheduler = build_scheduler(optimizer, c, 30, 10)
    for _ in range(40):  # past the schedule's end (a resume that asks for more steps rebuilds it instead)
        optimizer.step(), scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1, abs=1e-9)
    with pytest.raises(ConfigError, match="min_lr=2.0 is above train.lr=1.0"):
        TrainConfig(steps=3, lr=1.0, min_lr=2.0, schedule="linear")


def test_constant_and_step_schedules():
    assert lr_curve(TrainConfig(steps=20, lr=0.5, schedule="constant"), 20) == pytest.approx([0.5] * 20)
    got = lr_curve(TrainConfig(steps=30, lr=1.0, schedule="step", step_size=10, gamma=0.5), 30)
    assert got == pytest.approx([1.0] * 10 + [0.5] * 10 + [0.25] * 10)


def test_epoch_decay_keeps_lr_for_two_epochs_then_times_0_9_per_epoch():
    got = lr_curve(TrainConfig(epochs=5, lr=1.0, schedule="epoch_decay", decay_after_epochs=2, gamma=0.9), 50, 10)
    want = [1.0] * 20 + [0.9] * 10 + [0.81] * 10 + [0.729] * 10
    assert got == pytest.approx(want)


def test_norms_and_biases_are_not_decayed():
    model = torch.nn.Sequential(torch.nn.Embedding(5, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 3))
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert {p.ndim for p in decay["params"]} == {2} and {p.ndim for p in no_decay["params"]} == {1}
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_overrides_parse_values_as_yaml_and_unknown_keys_are_named():
    data = apply_overrides({"train": {"steps": 5}}, ["train.lr=3e-4", "train.betas=[0.9, 0.95]",
                                                     "model.core.d_model=32", "train.clip=null"])
    config = from_dict(ExperimentConfig, data)
    assert config.train.lr == 3e-4 and config.train.betas == (0.9, 0.95) and config.train.clip is None
    assert config.model.core.d_model == 32
    with pytest.raises(ConfigError, match="train.lrr'; did you mean lr"):
        from_dict(ExperimentConfig, apply_overrides({"train": {"steps": 5}}, ["train.lrr=1"]))
    with pytest.raises(ConfigError, match="exactly one of train.steps and train.epochs"):
        from_dict(ExperimentConfig, {"train": {"steps": 5, "epochs": 2}})


@pytest.mark.parametrize("override, message", [("train.lrr=0.1", "unknown config key 'train.lrr'; did you mean lr"),
                                               ("train.steps=many", "train.steps: expected int"),
                                               ("train.schedule=exponential", "train.schedule: 'exponential' is not one of")])
def test_bad_recipe_key_is_one_line_and_exit_status_2(tmp_path, override, message):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"data": {"name": "copy_digits"}, "train": {"steps": 3}}))
    result = subprocess.run([sys.executable, "-m", "xformer", "train", str(recipe), override, "--out",
                             str(tmp_path / "run")], capture_output=True, text=True)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "run").exists()
