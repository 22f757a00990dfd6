"""train.layer_decay (timm's --layer-decay): each parameter's learning rate is lr * decay ** (L + 1 - layer), the
same scale timm's param_groups_layer_decay gives the same ViT's tensors, the whole schedule (floor included)
scaled; a decay of 1 trains as without it; baselines and values outside (0, 1] are refused in one line."""
import json
from pathlib import Path

import pytest
import torch

from xformer.cli import main
from xformer.config import ConfigError
from xformer.train.config import TrainConfig
from xformer.train.optim import build_optimizer, build_scheduler

RECIPE = str(Path(__file__).resolve().parents[1] / "tasks" / "reverse.yaml")
timm = pytest.importorskip("timm")


def timm_vit(depth=3):
    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=8, patch_size=2, in_chans=1,
                            embed_dim=48, depth=depth, num_classes=10)
    with torch.no_grad():  # every tensor distinct, so that a tensor finds its timm twin by value
        for p in vit.parameters():
            p.add_(torch.randn_like(p))
    return vit


def test_scales_are_timm_s_for_the_same_vit():
    from timm.optim import param_groups_layer_decay

    from xformer.interop.timm_vit import from_timm_vit

    vit = timm_vit()
    theirs = {}
    for group in param_groups_layer_decay(vit, weight_decay=0.05, layer_decay=0.6):
        for p in group["params"]:
            theirs[p.detach().flatten()[:8].tolist().__repr__()] = (group["lr_scale"], group["weight_decay"])
    ours = from_timm_vit(vit)
    config = TrainConfig(steps=10, lr=1e-3, weight_decay=0.05, layer_decay=0.6)
    optimizer = build_optimizer(ours, config)
    matched = 0
    for group in optimizer.param_groups:
        assert group["lr"] == pytest.approx(1e-3 * group["lr_scale"])
        for p in group["params"]:
            key = p.detach().flatten()[:8].tolist().__repr__()
            if key in theirs:  # positions are split / joined between the two: the rest is matched
                matched += 1
                scale, wd = theirs[key]
                assert group["lr_scale"] == pytest.approx(scale) and group["weight_decay"] == wd
    assert matched >= 3 * 12 + 6  # every block tensor, the stem, the final norm and the head
    scales = sorted({round(g["lr_scale"], 6) for g in optimizer.param_groups})
    assert scales == [round(0.6 ** k, 6) for k in (4, 3, 2, 1, 0)]


def test_the_schedule_and_its_floor_scale_with_each_layer():
    from xformer.interop.timm_vit import from_timm_vit

    model = from_timm_vit(timm_vit(depth=2))
    config = TrainConfig(steps=20, lr=1e-2, min_lr=1e-3, warmup_steps=4, layer_decay=0.5)
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, 20, 10)
    plain = TrainConfig(steps=20, lr=1e-2, min_lr=1e-3, warmup_steps=4)
    reference = build_scheduler(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-2), plain, 20, 10)
    for _ in range(20):
        for group in optimizer.param_groups:
            assert group["lr"] == pytest.approx(reference.get_last_lr()[0] * group["lr_scale"], rel=1e-6)
        optimizer.step(), scheduler.step(), reference.optimizer.step(), reference.step()
    assert min(g["lr"] for g in optimizer.param_groups) == pytest.approx(1e-3 * 0.5 ** 3, rel=1e-3)


def test_a_decay_of_one_trains_as_without_and_bad_values_are_one_line(tmp_path, capsys):
    tiny = [RECIPE, "train.steps=8", "train.log_every=2", "train.eval_every=8", "data.args.n_train=640",
            "data.args.n_val=64", "data.args.n_test=64", "--quiet"]
    assert main(["train", *tiny, "--out", str(tmp_path / "plain")]) == 0
    assert main(["train", *tiny, "train.layer_decay=1", "--out", str(tmp_path / "decay1")]) == 0
    assert main(["train", *tiny, "train.layer_decay=0.5", "--out", str(tmp_path / "decay05")]) == 0
    capsys.readouterr()
    loss = {}
    for run in ("plain", "decay1", "decay05"):
        rows = map(json.loads, (tmp_path / run / "metrics.jsonl").read_text().splitlines())
        loss[run] = [row["train_loss"] for row in rows if "train_loss" in row]
    assert loss["decay1"] == pytest.approx(loss["plain"], rel=1e-5)
    assert loss["decay05"] != pytest.approx(loss["plain"], rel=1e-3)
    for override, words in (("train.layer_decay=1.5", "must be in (0, 1]"), ("train.layer_decay=0", "(0, 1]")):
        assert main(["train", *tiny, override, "--out", str(tmp_path / "bad")]) == 2
        assert words in capsys.readouterr().err
    assert main(["train", str(Path(RECIPE).parent / "cnn_digits.yaml"), "train.steps=2", "train.layer_decay=0.7",
                 "--out", str(tmp_path / "cnn"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has none (a baseline)" in err, err
    assert not (tmp_path / "bad").exists() and not (tmp_path / "cnn").exists()
    with pytest.raises(ConfigError):
        TrainConfig(steps=1, layer_decay=float("nan"))


def test_an_interrupted_run_resumes_to_the_uninterrupted_weights(tmp_path, capsys, interrupt_at):
    from safetensors.torch import load_file

    tiny = [RECIPE, "train.steps=20", "train.log_every=5", "train.eval_every=10", "data.args.n_train=640",
            "data.args.n_val=64", "data.args.n_test=64", "train.layer_decay=0.6", "train.min_lr=1e-4",
            "train.warmup_steps=3", "--quiet"]
    assert main(["train", *tiny, "--out", str(tmp_path / "whole")]) == 0
    interrupt_at(12)
    assert main(["train", *tiny, "--out", str(tmp_path / "cut")]) == 130
    interrupt_at(None)
    assert main(["train", "--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    capsys.readouterr()
    whole, cut = (load_file(str(tmp_path / run / "checkpoints" / "step_00000020" / "model.safetensors"))
                  for run in ("whole", "cut"))
    assert all(torch.equal(whole[key], cut[key]) for key in whole)
