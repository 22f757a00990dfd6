"""Distillation from a trained run (xformer/train/distill.py): the losses against their formulas written out,
alpha = 0 equal to plain training bit for bit, a tiny digits ViT distilled from a tiny CNN run trained here
(its folder evaluates and resumes like any other), and bad inputs refused in one line before any file."""
import json
import re
import shutil

import pytest
import torch
import torch.nn.functional as F
import yaml

from xformer.cli import main
from xformer.config import ConfigError, from_dict
from xformer.train.checkpoint import checkpoint_dir, read_weights
from xformer.train.config import Distill, ExperimentConfig
from xformer.train.distill import distillation_loss
from xformer.train.run import evaluate_run, train_run

from train_helpers import assert_same_tensors, crash_after_checkpoint

TRAIN = {"steps": 6, "batch_size": 32, "lr": 3e-3, "warmup_steps": 1, "eval_every": 3, "log_every": 1,
         "device": "cpu", "deterministic": True}
TEACHER = {"model": {"baseline": {"name": "cnn", "args": {"widths": [8, 16]}}},
           "data": {"name": "digits", "args": {}}, "train": TRAIN}
STUDENT = {  # dropout, affine augmentation and MixUp soft targets: every random draw of a real recipe
    "model": {"architecture": "encoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32,
                                                  "dropout": 0.1},
              "tokenizer": {"name": "image_patches", "args": {"patch_size": 4, "class_token": True}},
              "head": {"name": "classification", "args": {"pool": "cls"}}},
    "data": {"name": "digits", "args": {"affine": True, "mixup": 0.5, "label_smoothing": 0.1}},
    "train": TRAIN,
}


def experiment(recipe: dict, distill: dict | None = None, **train) -> ExperimentConfig:
    return from_dict(ExperimentConfig, {**recipe, "train": {**recipe["train"], **train}, "distill": distill or {}})


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    run = tmp_path_factory.mktemp("distill") / "cnn"
    train_run(experiment(TEACHER), run)
    return run


def losses(run) -> list[dict]:
    """metrics.jsonl without its timings."""
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k not in ("examples_per_second", "train_seconds")} for line in lines]


def final_weights(run) -> dict:
    return read_weights(checkpoint_dir(run / "checkpoints"))


def test_soft_and_hard_losses_are_the_formulas():
    torch.manual_seed(0)
    zs, zt, y = torch.randn(5, 7), 3 * torch.randn(5, 7), torch.randint(0, 7, (5,))
    ce = F.cross_entropy(zs, y)
    for alpha, tau in [(0.5, 1.0), (0.1, 3.0), (1.0, 0.5)]:
        p, log_q = (zt / tau).softmax(-1), (zs / tau).log_softmax(-1)
        kl = (p * (p.log() - log_q)).sum(-1).mean()  # KL(softmax(z_t/tau) || softmax(z_s/tau)), mean over examples
        expected = (1 - alpha) * ce + alpha * tau ** 2 * kl
        got = distillation_loss(ce, zs, zt, Distill("t", "soft", alpha, tau))
        torch.testing.assert_close(got, expected)
    hard = -zs.log_softmax(-1)[torch.arange(5), zt.argmax(-1)].mean()  # CE(argmax z_t, z_s)
    torch.testing.assert_close(distillation_loss(ce, zs, zt, Distill("t", "hard", 0.5)), 0.5 * ce + 0.5 * hard)


def test_alpha_zero_is_plain_training_bit_for_bit(teacher, tmp_path):
    plain, distilled = tmp_path / "plain", tmp_path / "distilled"
    train_run(experiment(STUDENT), plain)
    train_run(experiment(STUDENT, {"teacher": str(teacher), "kind": "soft", "alpha": 0.0}), distilled)
    assert losses(plain) == losses(distilled)
    assert_same_tensors(final_weights(plain), final_weights(distilled))


@pytest.mark.parametrize("kind", ["soft", "hard"])
def test_a_distilled_student_trains_and_its_folder_is_an_ordinary_run(teacher, tmp_path, kind):
    plain, run = tmp_path / "plain", tmp_path / "student"
    train_run(experiment(STUDENT), plain)
    final = train_run(experiment(STUDENT, {"teacher": str(teacher), "kind": kind, "alpha": 0.5}), run)
    train = [line["train_loss"] for line in losses(run) if "train_loss" in line]
    assert train != [line["train_loss"] for line in losses(plain) if "train_loss" in line]  # the teacher counts
    weights = final_weights(run)
    assert weights.keys() == final_weights(plain).keys()  # the student's weights alone, names unchanged
    again = evaluate_run(run)  # validation and test losses are the student's own cross-entropy
    for key in ("val_loss", "test_loss", "test_accuracy"):
        assert again[key] == pytest.approx(final[key], abs=1e-6)
    assert yaml.safe_load((run / "config.yaml").read_text())["distill"]["teacher"] == str(teacher)


def test_an_interrupted_distilled_run_resumes_exactly(teacher, tmp_path, monkeypatch):
    config = experiment(STUDENT, {"teacher": str(teacher), "kind": "hard", "alpha": 0.5})
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    train_run(config, whole)
    crash_after_checkpoint(monkeypatch, 3, lambda: train_run(config, cut))
    train_run(config, cut, resume=True)  # the teacher is loaded again from the recorded config
    assert losses(cut) == losses(whole)
    assert_same_tensors(final_weights(cut), final_weights(whole))


def test_bad_distillation_settings_are_one_line_errors(teacher, tmp_path, capsys):
    recipe = tmp_path / "student.yaml"
    recipe.write_text(yaml.safe_dump(STUDENT))
    other = tmp_path / "teacher_3_classes"  # the teacher's folder, its config.yaml saying 3 classes
    shutil.copytree(teacher, other)
    config = yaml.safe_load((other / "config.yaml").read_text())
    config["model"]["baseline"]["args"]["n_classes"] = 3
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    rgb = tmp_path / "teacher_rgb"  # the teacher's folder, its config.yaml saying 3-channel images
    shutil.copytree(teacher, rgb)
    config = yaml.safe_load((rgb / "config.yaml").read_text())
    config["model"]["baseline"]["args"]["channels"] = 3
    (rgb / "config.yaml").write_text(yaml.safe_dump(config))
    grey_folder = tmp_path / "teacher_image_folder"  # its config.yaml saying 8x8 grey image_folder (mean/std 0.5)
    shutil.copytree(teacher, grey_folder)
    config = yaml.safe_load((grey_folder / "config.yaml").read_text())
    config["data"] = {"name": "image_folder", "args": {"root": "somewhere", "image_size": 8, "channels": 1}}
    (grey_folder / "config.yaml").write_text(yaml.safe_dump(config))
    renamed = tmp_path / "teacher_other_order"  # ten classes, in another order: its labels mean other digits
    shutil.copytree(teacher, renamed)
    (renamed / "classes.json").write_text(json.dumps({"class_names": [str(k) for k in reversed(range(10))]}))
    grey_one_number = tmp_path / "teacher_one_number"  # image_folder mean/std given as one number each
    shutil.copytree(grey_folder, grey_one_number)
    config["data"]["args"].update(mean=0.5, std=0.5)
    (grey_one_number / "config.yaml").write_text(yaml.safe_dump(config))
    lm = tmp_path / "lm_run"  # a language model's folder (its config.yaml is all the check reads)
    (lm / "checkpoints").mkdir(parents=True)
    (lm / "config.yaml").write_text(yaml.safe_dump({"model": {"head": {"name": "causal_lm", "args": {}}}}))
    cases = [
        ([f"distill.teacher={teacher}", "distill.alpha=1.5"], r"distill\.alpha must be in \[0, 1\], got 1\.5"),
        ([f"distill.teacher={teacher}", "distill.temperature=0"], r"distill\.temperature must be > 0, got 0"),
        ([f"distill.teacher={tmp_path / 'missing'}"], r"distill\.teacher .*missing: not a run folder"),
        ([f"distill.teacher={other}"], r"the teacher has 3 classes, this run 10"),
        ([f"distill.teacher={lm}"], r"distill\.teacher .*lm_run: not a classification run"),
        # the teacher's input must be the student's: (C, H, W) named for both, before any file is written
        ([f"distill.teacher={teacher}", "data.args.image_size=16"],
         r"the teacher reads \(C, H, W\) = \(1, 8, 8\) images, this run's model \(1, 16, 16\) images; .*"
         r"data\.args\.image_size"),
        ([f"distill.teacher={rgb}"], r"the teacher reads \(C, H, W\) = \(3, 8, 8\) images, this run's model "
                                     r"\(1, 8, 8\) images"),
        ([f"distill.teacher={grey_folder}"], r"the teacher was trained on images normalised with mean \[0\.5\] "
                                             r"std \[0\.5\], this run's data gives none \(pixels in \[0, 1\]\)"),
        ([f"distill.teacher={grey_one_number}"], r"the teacher was trained on images normalised with mean \[0\.5\]"),
        ([f"distill.teacher={renamed}"], r"its classes \['9', '8', .*\] are not this run's \['0', '1', .*\]"),
        (["distill.alpha=0.3"], r"distill\.kind / alpha / temperature are set but distill\.teacher is not"),
    ]
    for i, (overrides, message) in enumerate(cases):
        run = tmp_path / f"run{i}"
        capsys.readouterr()
        assert main(["train", str(recipe), *overrides, "--out", str(run)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert re.search(message, err), err
        assert not run.exists()  # refused before the first file is written
    with pytest.raises(ConfigError, match="distill.alpha"):
        Distill("t", alpha=-0.1)


def test_a_teacher_of_another_image_size_is_refused_before_it_can_fail_mid_run(teacher, tmp_path):
    """The 8x8 CNN teacher on 16x16 students: refused at once, where the first training step used to stop with
    the CNN's shape error (a ViT teacher with resampled positions would have run on, quietly wrong)."""
    from xformer.train.distill import check_teacher, image_input, normalisation

    student = experiment({**STUDENT, "data": {"name": "digits", "args": {"image_size": 16}}},
                         {"teacher": str(teacher), "alpha": 0.5})
    with pytest.raises(ConfigError, match=r"\(1, 8, 8\) images, this run's model \(1, 16, 16\) images"):
        train_run(student, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert image_input({"baseline": {"args": {"image_size": [8, 12], "channels": 1}}}) == (1, 8, 12)
    assert image_input({"tokenizer": {"name": "text", "args": {"vocab_size": 9}}}) is None
    mnist = {"model": {"baseline": {"args": {"image_size": 28, "channels": 1}}}, "data": {"name": "mnist"}}
    assert normalisation(mnist) == ([0.1307], [0.3081])  # the published MNIST statistics the data applies
    assert normalisation({**mnist, "data": {"name": "digits"}}) == (None, None)
    assert normalisation({**mnist, "data": {"name": "csv_series"}}) is None  # not an image dataset: not compared
    with pytest.raises(ConfigError, match="this run's model no images"):  # an image teacher for a text student
        check_teacher(from_dict(ExperimentConfig, {
            "model": {"tokenizer": {"name": "text", "args": {}}, "head": {"name": "classification",
                                                                         "args": {"n_classes": 10}}},
            "distill": {"teacher": str(teacher)}}))


def test_a_relative_teacher_is_recorded_absolute_and_resumes_from_any_directory(teacher, tmp_path, monkeypatch):
    """distill.teacher=cnn given in the teacher's parent folder: the run records the absolute path (config.yaml
    and the checkpoints' state), and a resume started in another folder, where ./cnn is another run, loads the
    same teacher and ends exactly as the uninterrupted run."""
    from xformer.train.checkpoint import read_state

    monkeypatch.chdir(teacher.parent)
    config = experiment(STUDENT, {"teacher": teacher.name, "kind": "soft", "alpha": 0.5})
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    train_run(config, whole)
    assert config.distill.teacher == teacher.name  # the caller's recipe is left as it was
    assert yaml.safe_load((whole / "config.yaml").read_text())["distill"]["teacher"] == str(teacher)
    assert read_state(checkpoint_dir(whole / "checkpoints"))["config"]["distill"]["teacher"] == str(teacher)
    crash_after_checkpoint(monkeypatch, 3, lambda: train_run(config, cut))
    elsewhere = tmp_path / "elsewhere"
    decoy = elsewhere / teacher.name  # ./cnn from here: a 3-class run, refused if the resume looked here
    shutil.copytree(teacher, decoy)
    decoy_config = yaml.safe_load((decoy / "config.yaml").read_text())
    decoy_config["model"]["baseline"]["args"]["n_classes"] = 3
    (decoy / "config.yaml").write_text(yaml.safe_dump(decoy_config))
    monkeypatch.chdir(elsewhere)
    assert main(["train", "--resume", str(cut), "--quiet"]) == 0
    assert losses(cut) == losses(whole)
    assert_same_tensors(final_weights(cut), final_weights(whole))
    assert yaml.safe_load((cut / "config.yaml").read_text())["distill"]["teacher"] == str(teacher)


def test_resume_with_the_recipe_reads_a_relative_teacher_from_where_it_starts(teacher, tmp_path, monkeypatch):
    """The recipe's relative distill.teacher, given again with --resume in the same folder, is the absolute path
    the run recorded: it continues. From another folder the same name is another path: refused in one line."""
    monkeypatch.chdir(teacher.parent)
    config = experiment(STUDENT, {"teacher": teacher.name, "kind": "soft", "alpha": 0.5})
    cut = tmp_path / "cut"
    crash_after_checkpoint(monkeypatch, 3, lambda: train_run(config, cut))
    train_run(config, cut, resume=True)
    assert max(line["step"] for line in losses(cut)) == TRAIN["steps"]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"--resume cannot change distill\.teacher"):
        train_run(config, cut, resume=True)
