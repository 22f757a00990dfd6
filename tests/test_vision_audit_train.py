"""The image workflow's training / evaluation side, as an audit found it: other data read with the run's own
preprocessing, train_seconds over resumed sessions, ensembles of runs trained on the same data, a failed
--overwrite's advice, init_from at another image size, and other data that lacks a class."""
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from train_helpers import crash_after_checkpoint
from xformer.cli import main
from xformer.config import ConfigError, from_dict
from xformer.tokenizers.image import interpolate_grid_positions
from xformer.train.checkpoint import checkpoint_dir, read_eval_weights, read_state
from xformer.train.config import ExperimentConfig
from xformer.train.ensemble import evaluate_ensemble, load_ensemble_model
from xformer.train.init_from import init_from_pretrained
from xformer.train.run import build_resolved, evaluate_run, load_run, train_run
from xformer.train.trainer import Trainer

TASKS = Path(__file__).resolve().parents[1] / "tasks"
CORE = {"d_model": 8, "n_layers": 1, "n_heads": 2, "d_ff": 16}
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (220, 220, 30)}


def write_images(root, classes=("red", "green", "blue"), splits=(("train", 4), ("val", 2), ("test", 2)), size=16):
    rng = np.random.default_rng(0)
    for split, n in splits:
        for name in classes:
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                a = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
                a[4:12, 4:12] = COLOURS[name]
                Image.fromarray(a).save(root / split / name / f"{i}.png")
    return root


def vit_recipe(root, image_size=16, patch_size=4, **data_args) -> dict:
    """docs/vision.md's flowers.yaml, tiny."""
    return {"model": {"architecture": "encoder", "core": CORE,
                      "tokenizer": {"name": "image_patches", "args": {"patch_size": patch_size}},
                      "head": {"name": "classification"}},
            "data": {"name": "image_folder", "args": {"root": str(root), "image_size": image_size, **data_args}},
            "train": {"steps": 2, "batch_size": 4, "eval_every": 2}}


def cli_train(tmp, recipe, name, *extra) -> int:
    (tmp / f"{name}.yaml").write_text(yaml.safe_dump(recipe))
    torch.set_num_threads(1)
    return main(["train", str(tmp / f"{name}.yaml"), "--out", str(tmp / name), "--quiet", "--threads", "1", *extra])


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audit_train")
    write_images(tmp / "clean")
    assert cli_train(tmp, vit_recipe(tmp / "clean", hflip=0.5), "vit") == 0
    return tmp, tmp / "vit"


# ---- A2: other data is read with the run's own preprocessing ----------------------------------------------
def test_evaluate_refuses_data_overrides_that_preprocess_otherwise(folder_run, capsys):
    tmp, run = folder_run
    for override, named in (("data.args.mean=0.9 data.args.std=0.1", "leave data.args.mean and data.args.std out"),
                            ("data.args.image_size=8", "leave data.args.image_size out"),
                            ("data.args.channels=1", "data.args.channels")):
        capsys.readouterr()
        assert main(["evaluate", str(run), *override.split()]) == 2
        err = one_line_error(capsys)
        assert "preprocessed otherwise" in err and named in err and str(run / "preprocess.json") in err, err
    # the run's own values, spelled out, and another root read alike are scored
    capsys.readouterr()
    assert main(["evaluate", str(run), "data.args.mean=[0.485,0.456,0.406]", "data.args.std=[0.229,0.224,0.225]",
                 f"data.args.root={tmp / 'clean'}"]) == 0, capsys.readouterr().err


# ---- A5: train_seconds over every session ------------------------------------------------------------------
def test_train_seconds_add_up_over_resumed_sessions(tmp_path, monkeypatch):
    write_images(tmp_path / "clean")
    recipe = vit_recipe(tmp_path / "clean")
    recipe["train"] = {"steps": 4, "batch_size": 4, "eval_every": 2}
    config = from_dict(ExperimentConfig, recipe)
    step = Trainer._step

    def slow_step(self, batches):  # each step takes at least 0.2 s, so that the sessions' shares show
        time.sleep(0.2)
        return step(self, batches)

    monkeypatch.setattr(Trainer, "_step", slow_step)
    run = tmp_path / "run"
    crash_after_checkpoint(monkeypatch, 2, lambda: train_run(config, run))
    first = read_state(checkpoint_dir(run / "checkpoints"))["train_seconds"]
    assert first >= 0.4
    metrics = train_run(config, run, resume=True)
    assert metrics["train_seconds"] >= first + 0.39  # both sessions (2 steps each), not the resumed one alone
    # a resume that only redoes the final evaluation (e.g. after an unreadable test image) keeps the total the
    # last checkpoint recorded (no longer 0.0)
    saved = read_state(checkpoint_dir(run / "checkpoints"))["train_seconds"]
    assert saved >= first + 0.4
    saved = round(saved, 2)  # as metrics.json rounds it
    assert metrics["train_seconds"] >= saved
    assert train_run(config, run, resume=True)["train_seconds"] >= saved


# ---- C1: an ensemble of runs trained on the same data ------------------------------------------------------
def test_the_docs_flowers_ensemble_of_a_vit_and_the_cnn_recipe(folder_run, tmp_path, capsys):
    tmp, vit = folder_run
    # tasks/cnn_32.yaml spells out channels and other augmentation; the ViT's recipe leaves channels and
    # val_fraction (unused: clean/ has val/) to their defaults, and sets a val_fraction of its own in a second run
    cnn = tmp_path / "cnn"
    assert main(["train", str(TASKS / "cnn_32.yaml"), f"data.args.root={tmp / 'clean'}", "data.args.image_size=16",
                 "train.steps=2", "train.batch_size=4", "train.eval_every=2", "--out", str(cnn), "--quiet",
                 "--threads", "1"]) == 0
    assert cli_train(tmp_path, vit_recipe(tmp / "clean", val_fraction=0.3), "vit2") == 0
    capsys.readouterr()
    assert main(["evaluate", str(vit), str(cnn), str(tmp_path / "vit2")]) == 0, capsys.readouterr().err
    assert 0.0 <= json.loads(capsys.readouterr().out)["test_accuracy"] <= 1.0
    _, model = load_ensemble_model([vit, cnn])  # predict --ensemble's models
    assert len(model.members) == 2
    # truly other data is still refused: other classes, another root, another image size
    write_images(tmp_path / "other", classes=("red", "green", "yellow"))
    assert cli_train(tmp_path, vit_recipe(tmp_path / "other"), "other_classes") == 0
    capsys.readouterr()
    assert main(["evaluate", str(vit), str(tmp_path / "other_classes")]) == 2
    err = one_line_error(capsys)
    assert "trained on other data" in err and "root" in err
    shutil.copytree(tmp_path / "other_classes", tmp_path / "other_classes_here")
    saved = yaml.safe_load((tmp_path / "other_classes_here" / "config.yaml").read_text())
    saved["data"]["args"]["root"] = str(tmp / "clean")  # the same root, but the run's classes.json differs
    (tmp_path / "other_classes_here" / "config.yaml").write_text(yaml.safe_dump(saved))
    with pytest.raises(ConfigError, match=r"classifies into \['green', 'red', 'yellow'\]"):
        evaluate_ensemble([vit, tmp_path / "other_classes_here"])
    assert cli_train(tmp_path, vit_recipe(tmp / "clean", image_size=8), "small") == 0
    with pytest.raises(ConfigError, match=r"reads its images otherwise .*image_size \[16, 16\] vs \[8, 8\]"):
        evaluate_ensemble([vit, tmp_path / "small"])


# ---- C2: a failed --overwrite keeps the old run and says to run the command again --------------------------
def test_a_failed_overwrite_advises_the_same_command_not_a_resume(folder_run, tmp_path, capsys):
    tmp, vit = folder_run
    shutil.copytree(tmp / "clean", tmp_path / "trunc")
    png = (tmp / "clean" / "train" / "red" / "0.png").read_bytes()
    (tmp_path / "trunc" / "train" / "red" / "t.png").write_bytes(png[:len(png) // 2])
    shutil.copytree(vit, tmp_path / "ow")
    recipe = vit_recipe(tmp_path / "trunc")
    recipe["train"]["batch_size"] = 12  # every training image in the first batch: the truncated one too
    capsys.readouterr()
    assert cli_train(tmp_path, recipe, "ow", "--overwrite") == 2
    err = one_line_error(capsys)
    assert "image file is truncated" in err and "--resume" not in err
    assert f"the old run in {tmp_path / 'ow'} is as it was" in err and "run the same command again" in err
    assert (tmp_path / "ow" / "config.yaml").read_text() == (vit / "config.yaml").read_text()


# ---- C3: init_from at another image size resamples the learned grid of positions --------------------------
def test_init_from_another_image_size_resamples_the_position_grid(folder_run, capsys):
    tmp, vit = folder_run
    config = from_dict(ExperimentConfig, {**vit_recipe(tmp / "clean", image_size=24), "init_from": str(vit)})
    config, model, data = build_resolved(config)
    summary = init_from_pretrained(model, config, data)
    assert "resampled tokenizer.pos_grid from 4x4 to 6x6 cells" in summary
    theirs = read_eval_weights(checkpoint_dir(vit / "checkpoints", "best"))
    expected = interpolate_grid_positions(theirs["tokenizer.pos_grid"], (4, 4), (6, 6))
    torch.testing.assert_close(model.tokenizer.pos_grid.detach(), expected)
    torch.testing.assert_close(model.tokenizer.cls_token.detach(), theirs["tokenizer.cls_token"])  # kept as it is
    # other mismatches are still refused, with image settings as the advice (not the text-only max_length)
    config = from_dict(ExperimentConfig, {**vit_recipe(tmp / "clean", patch_size=8), "init_from": str(vit)})
    config, model, data = build_resolved(config)
    with pytest.raises(ConfigError, match="tokenizer.proj.weight .*patch_size") as error:
        init_from_pretrained(model, config, data)
    assert "max_length" not in str(error.value)


# ---- C6: other data that lacks one of the run's classes ---------------------------------------------------
def test_other_data_lacking_a_class_names_it_and_the_fix(folder_run, tmp_path, capsys):
    tmp, run = folder_run
    for name in ("red", "blue"):
        shutil.copytree(tmp / "clean" / "val" / name, tmp_path / "sub" / "val" / name)
    capsys.readouterr()
    assert main(["evaluate", str(run), f"data.args.root={tmp_path / 'sub'}"]) == 2
    err = one_line_error(capsys)
    assert "head.n_classes=2, but the model" in err and "lacks the run's ['green']" in err
    assert "one folder per class of the run" in err and "blue, green, red" in err
    (tmp_path / "sub" / "val" / "green").mkdir()  # the fix: an empty folder for the class the data lacks
    scored = evaluate_run(run, data_overrides=[f"data.args.root={tmp_path / 'sub'}"])
    _, model, data = load_run(run, data_overrides=[f"data.args.root={tmp_path / 'sub'}"])
    copied = sum(1 for name in ("red", "blue") for _ in (tmp_path / "sub" / "val" / name).iterdir())
    assert len(data.val) == copied and {label for _, label in data.val.source.dataset.samples} == {0, 2}  # blue, red
    assert 0.0 <= scored["val_accuracy"] <= 1.0
    (tmp_path / "sub" / "val" / "red").rename(tmp_path / "red_aside")
    (tmp_path / "sub" / "val" / "blue").rename(tmp_path / "blue_aside")
    (tmp_path / "sub" / "val" / "red").mkdir()
    (tmp_path / "sub" / "val" / "blue").mkdir()
    assert main(["evaluate", str(run), f"data.args.root={tmp_path / 'sub'}"]) == 2
    assert "holds no images in its class folders" in one_line_error(capsys)
    write_images(tmp_path / "swap", classes=("red", "green", "yellow"), splits=(("val", 1),))
    capsys.readouterr()
    assert main(["evaluate", str(run), f"data.args.root={tmp_path / 'swap'}"]) == 2
    err = one_line_error(capsys)
    assert "lacks the run's ['blue']" in err and "['yellow'], which the run does not know" in err
    assert "move the other class folders out" in err
