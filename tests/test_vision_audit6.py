"""The vision workflow as a sixth audit found it: a timm export's preprocessing, evaluate over whole splits and
never on a split that holds training images, the distillation teacher's identity across resumes, MixUp's even
micro-batches, label smoothing applied once, distill keys without a teacher, interruptions after the last step,
messages of predict / init_from / export, and the train_loss logged after a resume."""
import json
import shutil
import signal

import numpy as np
import pytest
import torch
from PIL import Image

from train_helpers import RECIPE, crash_after_checkpoint
from xformer.cli import main
from xformer.config import ConfigError, from_dict
from xformer.train.config import Distill, ExperimentConfig, recipe_dict
from xformer.train.interrupt import TrainingInterrupted
from xformer.train.run import evaluate_run, train_run
from xformer.train.trainer import Trainer

CORE = {"d_model": 8, "n_layers": 1, "n_heads": 2, "d_ff": 16, "norm_eps": 1e-6}
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}


def write_images(root, splits=(("train", 4), ("val", 2), ("test", 3)), size=16, seed=0):
    rng = np.random.default_rng(seed)
    for split, n in splits:
        for name, colour in COLOURS.items():
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                a = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
                a[4:12, 4:12] = colour
                Image.fromarray(a).save(root / split / name / f"{i}.png")
    return root


def vit(root, train=None, tokenizer=None, head=None, **data_args) -> ExperimentConfig:
    """A tiny ViT on an image folder (timm-exportable: LayerNorm eps 1e-6)."""
    return from_dict(ExperimentConfig, {
        "model": {"architecture": "encoder", "core": CORE,
                  "tokenizer": {"name": "image_patches", "args": {"patch_size": 4, **(tokenizer or {})}},
                  "head": {"name": "classification", "args": head or {}}},
        "data": {"name": "image_folder", "args": {"root": str(root), "image_size": 16, **data_args}},
        "train": {"steps": 2, "batch_size": 4, "eval_every": 2, "device": "cpu", **(train or {})}})


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("images") / "shapes")


@pytest.fixture(scope="module")
def teacher(images, tmp_path_factory):
    run = tmp_path_factory.mktemp("teacher") / "teacher"
    train_run(vit(images), run)
    return run


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ---- 1. the timm export's pretrained_cfg ----------------------------------------------------------------------


def test_timm_export_config_preprocesses_as_the_run(images, tmp_path):
    timm = pytest.importorskip("timm")
    from timm.data import create_transform, resolve_data_config

    from xformer.interop.export import export_model
    from xformer.train.run import load_run_model

    digits = from_dict(ExperimentConfig, {
        "model": {"architecture": "encoder", "core": CORE, "tokenizer": {"name": "image_patches",
                                                                           "args": {"patch_size": 2}},
                  "head": {"name": "classification"}},
        "data": {"name": "digits"}, "train": {"steps": 1, "batch_size": 8, "eval_every": 1, "device": "cpu"}})
    train_run(digits, tmp_path / "digits")
    # digits bring a larger file to 8x8 by area averaging (PIL's box filter); a folder's Resize is bilinear
    for run, channels, mean, std, interpolation in (
            (tmp_path / "digits", 1, [0.0], [1.0], "box"),
            (tmp_path / "folder", 3, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], "bilinear")):
        if not run.exists():
            train_run(vit(images), run)
        (tmp_path / f"{run.name}_timm").mkdir()
        export_model(load_run_model(run)[1], "timm", tmp_path / f"{run.name}_timm", run)
        cfg = json.loads((tmp_path / f"{run.name}_timm" / "config.json").read_text())["pretrained_cfg"]
        assert (cfg["mean"], cfg["std"], cfg["crop_mode"], cfg["interpolation"]) == (mean, std, "squash", interpolation)
        model = timm.create_model(f"local-dir:{tmp_path / f'{run.name}_timm'}", pretrained=True)
        transform = create_transform(**resolve_data_config({}, model=model))
        grey_or_rgb = Image.new("L" if channels == 1 else "RGB", (24, 40))  # not square: squashed, not cropped
        assert tuple(transform(grey_or_rgb).shape) == (channels, *cfg["input_size"][1:])


# ---- 2. and 3. evaluate: whole splits, never one that holds training images ------------------------------------


def test_evaluate_scores_every_example_of_a_split(images, tmp_path):
    from xformer.predict import predict_run

    run = tmp_path / "run"
    train_run(vit(images, train={"eval_batches": 1, "eval_batch_size": 2}), run)
    other = write_images(tmp_path / "other", splits=(("test", 3),), seed=1)
    metrics = evaluate_run(run, data_overrides=[f"data.args.root={other}"])
    rows, _ = predict_run(run, [other / "test"], top_k=1)
    truth = [row["file"].split("/")[-2] for row in rows]
    assert metrics["test_accuracy"] == pytest.approx(np.mean([r["class"] == t for r, t in zip(rows, truth)]))
    assert round(metrics["test_accuracy"] * 9, 6) % 1 == 0  # of the 9 images, not of one batch of 2


def test_metrics_json_covers_whole_splits_whatever_eval_batches(images, tmp_path):
    """train.eval_batches shortens the evaluations during training; the final figures of metrics.json (the last
    step is the best here: its validation is measured again, whole) are xformer evaluate's."""
    import json

    run = tmp_path / "run"
    train_run(vit(images, train={"eval_batches": 1, "eval_batch_size": 2}), run)
    saved = json.loads((run / "metrics.json").read_text())
    metrics = evaluate_run(run)
    for key in ("val_loss", "val_accuracy", "test_loss", "test_accuracy"):
        assert saved[key] == pytest.approx(metrics[key], rel=1e-6), key
    assert round(saved["test_accuracy"] * 9, 6) % 1 == 0  # of the 9 test images, not of one batch of 2
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("val_loss" in row and row["val_loss"] != saved["val_loss"] for row in logged)  # those were partial


def test_evaluate_refuses_a_split_that_holds_the_run_s_training_images(tmp_path):
    root = write_images(tmp_path / "no_val", splits=(("train", 4), ("test", 2)))
    run = tmp_path / "run"
    train_run(vit(root, val_fraction=0.5), run)
    with pytest.raises(ConfigError, match=r"data\.args\.val_fraction=0\.9 would split .* training did \(0\.5\)"):
        evaluate_run(run, data_overrides=["data.args.val_fraction=0.9"])
    assert "val_loss" in evaluate_run(run, data_overrides=["data.args.val_fraction=0.5"])  # the run's own value
    other = write_images(tmp_path / "other", splits=(("train", 4), ("test", 2)), seed=1)
    assert "val_loss" in evaluate_run(run, data_overrides=[f"data.args.root={other}", "data.args.val_fraction=0.25"])


# ---- 4. and 8. the distillation teacher -----------------------------------------------------------------------


def test_a_resume_refuses_a_teacher_whose_weights_changed(images, teacher, tmp_path, monkeypatch, capsys):
    mine = tmp_path / "teacher"
    shutil.copytree(teacher, mine)
    student = vit(images, train={"steps": 4})
    student.distill = Distill(teacher=str(mine))
    crash_after_checkpoint(monkeypatch, 2, lambda: train_run(student, tmp_path / "student"))
    assert json.loads((tmp_path / "student" / "teacher.json").read_text())["checkpoint"] == "step_00000002"
    assert main(["train", "--resume", str(mine), "train.steps=4", "--quiet", "--threads", "1"]) == 0  # teacher grows
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "student"), "--quiet", "--threads", "1"]) == 2
    assert "now lends step_00000004" in one_line(capsys)


def test_a_moved_teacher_is_found_again_and_the_resume_stays_exact(images, teacher, tmp_path, monkeypatch, capsys):
    from train_helpers import assert_same_tensors
    from xformer.train.checkpoint import checkpoint_dir, read_weights

    mine = tmp_path / "teacher"
    shutil.copytree(teacher, mine)
    student = vit(images, train={"steps": 4})
    student.distill = Distill(teacher=str(mine))
    train_run(student, tmp_path / "whole")
    crash_after_checkpoint(monkeypatch, 2, lambda: train_run(student, tmp_path / "cut"))
    mine.rename(tmp_path / "moved")
    resume = ["train", "--resume", str(tmp_path / "cut"), "--quiet", "--threads", "1"]
    capsys.readouterr()
    assert main(resume) == 2
    moved = f"move the teacher's run folder back to {mine} or give its new place with distill.teacher"
    assert moved in one_line(capsys)
    assert main([*resume[:3], f"distill.teacher={tmp_path / 'moved'}", *resume[3:]]) == 0
    capsys.readouterr()
    last = [read_weights(checkpoint_dir(tmp_path / run / "checkpoints")) for run in ("whole", "cut")]
    assert_same_tensors(*last)


def test_the_teacher_is_never_the_student_s_out_folder(images, teacher, tmp_path):
    mine = tmp_path / "teacher"
    shutil.copytree(teacher, mine)
    before = (mine / "config.yaml").read_text()
    student = vit(images)
    student.distill = Distill(teacher=str(mine))
    with pytest.raises(ConfigError, match="is this run's folder .*; give the student a folder of its own"):
        train_run(student, mine, overwrite=True)
    assert (mine / "config.yaml").read_text() == before and (mine / "checkpoints").is_dir()


def test_a_teacher_of_other_channels_names_the_channels(images, teacher, tmp_path):
    student = vit(images, channels=1)
    student.distill = Distill(teacher=str(teacher))
    with pytest.raises(ConfigError, match=r"\(3, 16, 16\) images, this run's model \(1, 16, 16\).*"
                                          r"data\.args\.channels=3"):
        train_run(student, tmp_path / "grey")


# ---- 5., 6. and 7. refusals of the recipe ---------------------------------------------------------------------


@pytest.mark.parametrize("train", [{"batch_size": 3}, {"batch_size": 6, "grad_accum": 2}])
def test_mixup_refuses_odd_micro_batches(images, tmp_path, train):
    with pytest.raises(ConfigError, match=r"micro-batches of 3 images.*need an even number; use train\.batch_size="):
        train_run(vit(images, train=train, mixup=0.8, cutmix=1.0, label_smoothing=0.1), tmp_path / "odd")
    assert not (tmp_path / "odd").exists()


def test_label_smoothing_of_mixed_targets_is_not_applied_twice(images, tmp_path):
    twice = vit(images, head={"label_smoothing": 0.1}, mixup=0.8, label_smoothing=0.1)
    with pytest.raises(ConfigError, match=r"model\.head\.args\.label_smoothing=0\.1 would smooth them again"):
        train_run(twice, tmp_path / "twice")
    train_run(vit(images, head={"label_smoothing": 0.1}, mixup=0.8), tmp_path / "once")  # the head alone: once


@pytest.mark.parametrize("given", [{"kind": "soft"}, {"alpha": 0.5}, {"temperature": 3}, {"kind": "hard"}])
def test_distill_keys_without_a_teacher_are_refused(given):
    with pytest.raises(ConfigError, match="are set but distill.teacher is not"):
        from_dict(ExperimentConfig, {"distill": given})
    written = recipe_dict(from_dict(ExperimentConfig, {}))["distill"]  # what every config.yaml holds: read back
    assert from_dict(ExperimentConfig, {"distill": written}).distill == Distill()


# ---- 9. interruptions after the last step, and twice -----------------------------------------------------------


def test_ctrl_c_during_the_final_evaluation_says_how_to_finish(images, tmp_path, monkeypatch):
    evaluate = Trainer.evaluate

    def interrupted_test_split(self, split, max_batches=None):
        if split == "test":
            signal.raise_signal(signal.SIGINT)
        return evaluate(self, split, max_batches)

    monkeypatch.setattr(Trainer, "evaluate", interrupted_test_split)
    with pytest.raises(KeyboardInterrupt) as e:  # (a bare one before: no word on what was kept)
        train_run(vit(images), tmp_path / "run")
    assert isinstance(e.value, TrainingInterrupted) and e.value.exit_status == 130
    assert "stopped after step 2 of 2, kept as" in str(e.value)
    assert "continue with: xformer train --resume" in str(e.value)
    monkeypatch.undo()
    assert train_run(vit(images), tmp_path / "run", resume=True)["steps"] == 2  # the resume finishes it


def test_sigterm_after_training_and_a_second_ctrl_c_stop_with_a_message():
    from xformer.train.interrupt import deferred_stop, stop_at_once

    with pytest.raises(TrainingInterrupted, match="after the end") as e:
        with stop_at_once(lambda signum: "after the end"):
            signal.raise_signal(signal.SIGTERM)
    assert e.value.exit_status == 143
    with pytest.raises(KeyboardInterrupt, match="twice: resume from step 4") as e:
        with deferred_stop(True, twice=lambda signum: "twice: resume from step 4") as stop:
            signal.raise_signal(signal.SIGINT)
            assert stop.requested
            signal.raise_signal(signal.SIGINT)
    assert isinstance(e.value, TrainingInterrupted)


def test_a_second_ctrl_c_mid_step_names_the_checkpoint_to_resume_from(images, tmp_path, monkeypatch):
    step = Trainer._step

    def twice(self, batches):
        if self.step + 1 == 3:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
        return step(self, batches)

    monkeypatch.setattr(Trainer, "_step", twice)
    with pytest.raises(KeyboardInterrupt, match=r"SIGINT twice: stopped during step 3 of 4; the last checkpoint "
                                                r"is .*step_00000002; continue with: xformer train --resume"):
        train_run(vit(images, train={"steps": 4}), tmp_path / "run")


# ---- 10. messages ---------------------------------------------------------------------------------------------


def test_predict_takes_one_path_and_refuses_an_absent_gpu(teacher, images, monkeypatch):
    from xformer.predict import predict_run

    monkeypatch.chdir(images)  # relative: read letter by letter, "/..." would have listed the whole disk
    one = "test/red/0.png"
    rows, _ = predict_run(teacher, one, top_k=1)
    assert [row["file"] for row in rows] == [one]
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="device=cuda, but this machine has no CUDA GPU"):
            predict_run(teacher, [one], device="cuda")


def test_timm_init_from_an_export_reads_its_heads_or_says_how_to_give_them(images, teacher, tmp_path, capsys):
    pytest.importorskip("timm")
    from xformer.interop.pretrained import load_timm

    assert main(["export", str(teacher), "--format", "timm", "--out", str(tmp_path / "exp")]) == 0
    # 8 wide with 2 heads: vit_tiny's 3 heads would not divide it; the export's config.json gives 2
    assert load_timm(tmp_path / "exp" / "model.safetensors", "vit_tiny_patch16_224").model.core.n_heads == 2
    (tmp_path / "lone").mkdir()
    shutil.copy(tmp_path / "exp" / "model.safetensors", tmp_path / "lone")
    with pytest.raises(ConfigError, match=r"give it after the name, #NAME,num_heads=N"):
        load_timm(tmp_path / "lone" / "model.safetensors", "vit_tiny_patch16_224")


def test_init_from_names_the_tensors_it_left_fresh(images, tmp_path, capsys):
    train_run(vit(images, tokenizer={"class_token": False}, head={"pool": "mean"}), tmp_path / "no_cls")
    capsys.readouterr()
    config = vit(images)
    config.init_from = str(tmp_path / "no_cls")
    train_run(config, tmp_path / "cls")
    out = capsys.readouterr().out
    assert "left fresh: tokenizer.cls_token, tokenizer.pos_prefix;" in out, out


def test_timm_export_refusals_offer_onnx():
    from xformer.interop.export import check_exportable
    from xformer.interop.support import CannotExport
    from xformer.models import build_model

    config = vit("unused", tokenizer={"shifted_patches": True, "image_size": 16, "channels": 3}, head={"n_classes": 3})
    with pytest.raises(CannotExport, match="shifted patch tokenization; use --format onnx"):
        check_exportable(build_model(config.model), "timm")


# ---- 11. the train_loss logged after a resume -----------------------------------------------------------------


def test_the_first_train_loss_after_a_resume_is_the_uninterrupted_run_s(tmp_path, monkeypatch):
    recipe = from_dict(ExperimentConfig, {**RECIPE, "train": {**RECIPE["train"], "steps": 10, "eval_every": 3,
                                                              "log_every": 5}})

    def losses(run):
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return {row["step"]: row["train_loss"] for row in rows if "train_loss" in row}

    train_run(recipe, tmp_path / "whole")
    crash_after_checkpoint(monkeypatch, 3, lambda: train_run(recipe, tmp_path / "cut"))
    train_run(recipe, tmp_path / "cut", resume=True)
    assert losses(tmp_path / "cut") == losses(tmp_path / "whole")
