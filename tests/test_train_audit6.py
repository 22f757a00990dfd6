"""Training's bad input as a sixth audit found it: init_from between baseline runs, a text teacher of another
vocabulary, settings that do nothing (aug_repeats on data that draws no augmentation, EMA / SAM keys while they
are off, a baseline recipe's transformer keys, empty paths), non-finite EMA warmup, the advice of a diverged run
and of a model too large, and a resume given a key at its default."""
import math

import pytest
import torch
import yaml

from train_helpers import RECIPE, crash_after_checkpoint
from train_helpers import assert_same_tensors
from xformer.cli import main
from xformer.config import ConfigError, from_dict
from xformer.train.checkpoint import checkpoint_dir, read_weights
from xformer.train.config import Ema, ExperimentConfig, Sam, TrainConfig, load_experiment, recipe_dict
from xformer.train.diverged import diverged_message
from xformer.train.run import build_resolved, train_run
from xformer.train.trainer import TrainingDiverged

TINY = {"d_model": 8, "n_layers": 1, "n_heads": 2, "d_ff": 16}
TRAIN = {"steps": 2, "batch_size": 8, "eval_every": 2, "device": "cpu"}


def experiment(model: dict, data: dict, **train) -> ExperimentConfig:
    return from_dict(ExperimentConfig, {"model": model, "data": data, "train": {**TRAIN, **train}})


def series(horizon: int = 4, input_len: int = 16, **args) -> dict:
    return {"name": "csv_series", "args": {"input_len": input_len, "horizon": horizon, **args}}  # synthetic rows


DLINEAR = {"baseline": {"name": "dlinear", "args": {"kernel_size": 5}}}
PATCHES = {"architecture": "encoder", "core": TINY, "head": {"name": "forecast"},
           "tokenizer": {"name": "series_patches", "args": {"patch_len": 4, "stride": 4}}}


def digits(**args) -> dict:
    return {"name": "digits", "args": args}


CONV = {"architecture": "encoder", "core": TINY, "tokenizer": {"name": "image_conv", "args": {}},
        "head": {"name": "classification", "args": {"pool": "mean"}}}


# ---- 7: init_from a baseline run ---------------------------------------------------------------------------
def test_init_from_a_run_of_the_same_baseline_copies_its_tensors(tmp_path, capsys):
    train_run(experiment(DLINEAR, series()), tmp_path / "a")
    config = experiment(DLINEAR, series(), steps=1, lr=1e-12)
    config.init_from = str(tmp_path / "a")
    train_run(config, tmp_path / "b")
    assert "loaded 4 of 4 tensors" in capsys.readouterr().out
    a, b = (read_weights(checkpoint_dir(tmp_path / run / "checkpoints")) for run in ("a", "b"))
    for key in a:  # one step of a vanishing learning rate from the same weights
        torch.testing.assert_close(a[key], b[key], atol=1e-9, rtol=0)
    other = experiment(DLINEAR, series(horizon=8))
    other.init_from = str(tmp_path / "a")
    with pytest.raises(ConfigError, match=r"none of this dlinear baseline's 4 tensors matches .*horizon"):
        train_run(other, tmp_path / "c")


def test_init_from_between_a_baseline_and_a_transformer_says_the_models_differ(tmp_path):
    train_run(experiment(DLINEAR, series()), tmp_path / "dlinear")
    train_run(experiment(PATCHES, series()), tmp_path / "patches")
    into_transformer = experiment(PATCHES, series())
    into_transformer.init_from = str(tmp_path / "dlinear")
    with pytest.raises(ConfigError, match="the models differ: the pre-trained run is the dlinear baseline, this "
                                          r"one a transformer \(encoder\)"):
        train_run(into_transformer, tmp_path / "x")
    into_baseline = experiment(DLINEAR, series())
    into_baseline.init_from = str(tmp_path / "patches")
    with pytest.raises(ConfigError, match=r"the pre-trained run is a transformer \(encoder\), this one the dlinear"):
        train_run(into_baseline, tmp_path / "y")
    longer = experiment(PATCHES, series(input_len=32))  # more patches: another table of positions
    longer.init_from = str(tmp_path / "patches")
    with pytest.raises(ConfigError, match=r"the pre-trained run read data\.args\.input_len 16, this recipe's 32 "
                                          r".*give data\.args\.input_len=16") as refused:
        train_run(longer, tmp_path / "z")
    assert "max_length" not in str(refused.value)


# ---- 8: a text teacher must read the student's vocabulary ---------------------------------------------------
TEXT = {"architecture": "encoder", "core": TINY, "tokenizer": {"name": "bert_text"},
        "head": {"name": "classification", "args": {"pool": "cls"}}}


def text(**args) -> dict:
    return {"name": "text_classification", "args": {"vocab_size": 120, "max_length": 16, **args}}


def test_a_text_teacher_of_another_vocabulary_is_refused(tmp_path):
    train_run(experiment(TEXT, text()), tmp_path / "teacher")
    for vocab_size in (100, 200):  # smaller: ids beyond its table; larger: the same ids, other pieces
        student = experiment(TEXT, text(vocab_size=vocab_size))
        student.distill.teacher = str(tmp_path / "teacher")
        with pytest.raises(ConfigError, match=r"teacher's vocabulary .* is not this run's.*data\.args\.tokenizer="):
            train_run(student, tmp_path / f"student{vocab_size}")
        assert not (tmp_path / f"student{vocab_size}").exists()
    same = experiment(TEXT, text(tokenizer=str(tmp_path / "teacher" / "tokenizer")))
    same.distill.teacher = str(tmp_path / "teacher")
    train_run(same, tmp_path / "student")  # the teacher's own vocabulary: distils


# ---- 9: settings that would do nothing ----------------------------------------------------------------------
def test_aug_repeats_on_data_without_random_augmentation_is_refused(tmp_path):
    copy = from_dict(ExperimentConfig, {**RECIPE, "train": {**RECIPE["train"], "aug_repeats": 3}})
    with pytest.raises(ConfigError, match="train.aug_repeats=3 .* data 'copy_digits' draws no random augmentation"):
        train_run(copy, tmp_path / "copy")
    with pytest.raises(ConfigError, match=r"draws no random augmentation.*data\.args\.hflip"):
        train_run(experiment(CONV, digits(affine=False), aug_repeats=2), tmp_path / "plain")
    with pytest.raises(ConfigError, match="data 'csv_series' draws no random augmentation"):
        train_run(experiment(DLINEAR, series(), aug_repeats=2), tmp_path / "series")
    assert not any(tmp_path.iterdir())
    train_run(experiment(CONV, digits(affine=True), aug_repeats=2), tmp_path / "affine")
    train_run(experiment(CONV, digits(mixup=0.5), aug_repeats=2), tmp_path / "mixup")


def test_repeated_augmentation_resumes_mid_epoch_to_the_same_weights(tmp_path, monkeypatch):
    """What tests/test_train_resume.py checked on copy_digits (now refused there), on augmented images."""
    def config():
        return experiment(CONV, digits(affine=True), steps=6, eval_every=3, aug_repeats=3, deterministic=True)

    train_run(config(), tmp_path / "whole")
    crash_after_checkpoint(monkeypatch, 3, lambda: train_run(config(), tmp_path / "cut"))
    train_run(config(), tmp_path / "cut", resume=True)
    assert_same_tensors(*(read_weights(checkpoint_dir(tmp_path / run / "checkpoints")) for run in ("whole", "cut")))


@pytest.mark.parametrize("section, given, message", [
    (Ema, {"decay": 0.99}, r"train.ema.decay=0.99 does nothing: train.ema.enabled is false"),
    (Ema, {"decay": 0.9998}, r"train.ema.decay=0.9998 does nothing"),  # given alone, even at its default
    (Ema, {"enabled": True, "warmup": True, "warmup_power": math.nan}, r"warmup_power must be a finite number > 0"),
    (Ema, {"enabled": True, "warmup": True, "warmup_power": math.inf}, r"warmup_power must be a finite number > 0"),
    (Sam, {"adaptive": True}, r"train.sam.adaptive=true does nothing: train.sam.rho is 0"),
    (Sam, {"eta": 0.1}, r"train.sam.eta=0.1 does nothing: train.sam.rho is 0"),
])
def test_ema_and_sam_keys_that_do_nothing_are_refused(section, given, message):
    with pytest.raises(ConfigError, match=message):
        section(**given)


def test_the_ema_and_sam_sections_of_every_config_yaml_still_load():
    saved = recipe_dict(from_dict(ExperimentConfig, RECIPE))  # every key at its default, as config.yaml holds them
    assert saved["train"]["ema"] == {"enabled": False, "decay": 0.9998, "warmup": False, "warmup_power": 2 / 3}
    assert saved["train"]["sam"] == {"rho": 0.0, "adaptive": False, "eta": 0.01}
    assert recipe_dict(from_dict(ExperimentConfig, yaml.safe_load(yaml.safe_dump(saved)))) == saved
    on = Ema(enabled=True, decay=0.99, warmup=False, warmup_power=2 / 3)  # a run with the average on
    assert (on.decay, on.warmup) == (0.99, False)
    assert Sam(rho=0.05, adaptive=False, eta=0.01).rho == 0.05 and Sam(rho=1.0, adaptive=True, eta=0.1).eta == 0.1


def test_a_baseline_recipe_refuses_model_keys_the_baseline_does_not_read():
    with pytest.raises(ConfigError, match=r"model.head is not read by the dlinear baseline.*remove it"):
        load_experiment("tasks/dlinear_etth1.yaml", ["model.head.name=classification_drloc"])
    with pytest.raises(ConfigError, match=r"model.core, model.architecture are not read"):
        load_experiment("tasks/dlinear_etth1.yaml", ["model.core.d_model=64", "model.architecture=decoder"])
    assert load_experiment("tasks/dlinear_etth1.yaml", ["model.baseline.args.kernel_size=5"]).model.baseline


@pytest.mark.parametrize("option", ["--out", "--init-from", "--resume"])
def test_empty_paths_on_the_command_line_are_refused(option, tmp_path, monkeypatch, capsys):
    recipe = tmp_path / "copy.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    monkeypatch.chdir(tmp_path)
    argv = ["train", str(recipe), "--out", "run", option, ""] if option != "--out" else ["train", str(recipe), "--out", ""]
    if option == "--resume":
        argv = ["train", "--resume", " "]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{option} was given an empty value" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.yaml"]  # no runs/copy-DATE, no run


def test_giving_both_steps_and_epochs_says_to_set_the_other_to_null():
    with pytest.raises(ConfigError, match=r"got train.steps=5 and train.epochs=3; .*train.steps=null"):
        TrainConfig(steps=5, epochs=3)


# ---- 11: the advice of a diverged run and of a model too large ----------------------------------------------
def test_a_diverged_run_names_its_own_unusual_settings_and_not_a_clip_it_has(tmp_path):
    with pytest.raises(TrainingDiverged) as diverged:
        train_run(from_dict(ExperimentConfig, {**RECIPE, "train": {**RECIPE["train"], "sam": {"rho": 1e308}}}),
                  tmp_path / "sam")
    line = str(diverged.value)
    assert "train.sam.rho=1e+308 (usual: 0.05)" in line and "train.clip" not in line
    cfg = TrainConfig(steps=5, clip=None)
    assert "or set train.clip" in diverged_message(math.nan, 4, None, cfg, {})
    first = diverged_message(math.inf, 1, None, TrainConfig(steps=5), {"data": {"args": {"mixup": math.inf}}})
    assert "before any update" in first and "data.args.mixup=inf" in first and "train.lr" not in first


def test_a_model_too_large_names_the_argument_of_the_part_that_holds_most(monkeypatch):
    import xformer.train.memory as memory

    monkeypatch.setattr(memory, "device_memory", lambda device: 2 ** 24)  # 16 MiB: a million parameters
    head = {"name": "classification_drloc", "args": {"pool": "mean", "hidden_dim": 200_000}}
    with pytest.raises(ConfigError, match=r"the classification_drloc head holds [\d,]+ of them: lower "
                                          r"model\.head\.args\.hidden_dim \(now 200000\)"):
        build_resolved(experiment({**CONV, "head": head}, digits()))
    core = experiment({**CONV, "core": {**TINY, "d_ff": 200_000}}, digits())
    with pytest.raises(ConfigError, match=r"lower model\.core\.d_model, d_ff or n_layers"):
        build_resolved(core)


# ---- 13: a resume given a key at its default --------------------------------------------------------------
def test_a_resume_accepts_a_key_given_at_the_default_the_saved_run_left_out(tmp_path):
    train_run(experiment(DLINEAR, series()), tmp_path / "run")
    again = experiment(DLINEAR, series(missing="error"), steps=3)
    again.model.baseline.args["individual"] = False  # DLinear's default too
    assert train_run(again, tmp_path / "run", resume=True)["steps"] == 3
    other = experiment(DLINEAR, series(missing="ffill"), steps=4)
    with pytest.raises(ConfigError, match=r"--resume cannot change data.args.missing \('error' in the saved run"):
        train_run(other, tmp_path / "run", resume=True)
