"""Hand-edited or mismatched run files (hand-edit audit): each is one line naming the file and the fix, exit status 2.

- a forecasting run's series_scaler.json that is not JSON, lacks a key or holds a value of another type
  (``xformer forecast`` / ``backtest``);
- a run's wandb.json and a distilled run's teacher.json edited by hand (``train --resume``);
- an unknown key typed into a run's config.yaml (``evaluate RUN``, ``train --resume RUN``) names RUN/config.yaml;
- a label beyond the model's classes (the Trainer on one's own dataset) is refused before cross_entropy;
- init_from a series run of another input_len names both lengths.
"""
import json
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch.utils.data import Dataset

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.cli import main
from xformer.config import ConfigError
from xformer.data.registry import DataBundle
from xformer.train.config import TrainConfig
from xformer.train.distributed import World
from xformer.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

TINY_TEXT = {
    "model": {"architecture": "decoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2},
              "tokenizer": {"name": "text"}, "head": {"name": "causal_lm"}},
    "data": {"name": "copy_digits", "args": {"n_train": 64, "n_val": 16, "n_test": 16, "length": 4}},
    "train": {"steps": 2, "batch_size": 16, "eval_every": 2, "log_every": 1, "device": "cpu"},
}
TEACHER = {"model": {"baseline": {"name": "cnn", "args": {"widths": [8, 16]}}},
           "data": {"name": "digits", "args": {}},
           "train": {"steps": 2, "batch_size": 16, "eval_every": 2, "device": "cpu"}}
STUDENT = {
    "model": {"architecture": "encoder", "core": {"d_model": 8, "n_layers": 1, "n_heads": 2, "d_ff": 16},
              "tokenizer": {"name": "image_patches", "args": {"patch_size": 4}},
              "head": {"name": "classification"}},
    "data": {"name": "digits", "args": {}},
    "train": {"steps": 2, "batch_size": 16, "eval_every": 2, "device": "cpu"},
}


def series_recipe(csv: Path, input_len: int = 24) -> dict:
    return {"model": {"architecture": "encoder", "core": {"d_model": 8, "n_layers": 1, "n_heads": 2, "d_ff": 16},
                      "tokenizer": {"name": "series_patches", "args": {"patch_len": 8, "stride": 4}},
                      "head": {"name": "forecast"}},
            "data": {"name": "csv_series", "args": {"path": str(csv), "input_len": input_len, "horizon": 8}},
            "train": {"steps": 2, "batch_size": 16, "eval_every": 2, "device": "cpu"}}


def train(folder: Path, recipe: dict, name: str, *extra: str) -> Path:
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(recipe))
    run = folder / name
    assert main(["train", str(folder / f"{name}.yaml"), *extra, "--out", str(run), "--quiet"]) == 0
    return run


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("handedit_series")
    t = np.arange(200)
    pd.DataFrame({"date": pd.date_range("2021-01-01", periods=200, freq="h"), "v": np.sin(t / 4)}).to_csv(
        folder / "s.csv", index=False)
    return {"run": train(folder, series_recipe(folder / "s.csv"), "run"), "csv": folder / "s.csv", "folder": folder}


def copy_of(run: Path, tmp_path: Path) -> Path:
    shutil.copytree(run, tmp_path / run.name)
    return tmp_path / run.name


def edit_json(path: Path, change) -> None:
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))


# ---- 1. series_scaler.json as forecast and backtest read it ---------------------------------------------------------
@pytest.mark.parametrize("edit, words", [
    (lambda p: p.write_text("{not json"), ["is not valid JSON", "restore it"]),
    (lambda p: p.write_text("[1]"), ["does not hold", "restore it"]),
    (lambda p: edit_json(p, lambda v: v.pop("mean")), ['lacks "mean"', "restore it"]),
    (lambda p: edit_json(p, lambda v: v.pop("columns")), ['lacks "columns"', "restore it"]),
    (lambda p: edit_json(p, lambda v: v.update(mean="x")), ['"mean"', '"x"', "restore it"]),
    (lambda p: edit_json(p, lambda v: v.update(scale=[1.0, 2.0])), ['"scale"', "1 number", "restore it"]),
    (lambda p: edit_json(p, lambda v: v.update(input_len="24")), ['"input_len"', "whole number", "restore it"]),
    (lambda p: edit_json(p, lambda v: v.update(validation_end="soon")), ['"validation_end"', "restore it"]),
], ids=["not-json", "a-list", "no-mean", "no-columns", "mean-text", "scale-count", "input-len-text", "end-text"])
def test_a_hand_edited_series_scaler_is_one_line_naming_it(series, tmp_path, cli_error, edit, words):
    run = copy_of(series["run"], tmp_path)
    edit(run / "series_scaler.json")
    named = str(run / "series_scaler.json")
    cli_error(["forecast", run, "--data", series["csv"], "--quiet"], named, *words)
    cli_error(["backtest", run, "--data", series["csv"], "--windows", "1", "--quiet"], named, *words)


# ---- 2. wandb.json and teacher.json on --resume ---------------------------------------------------------------------
@pytest.fixture
def fake_wandb(monkeypatch):
    """wandb is not a dependency: a stand-in with the calls WandbRun makes (see test_wandb_log.py)."""
    run = types.SimpleNamespace(step=0, log=lambda *a, **k: None, summary={}, finish=lambda **k: None)
    module = types.ModuleType("wandb")
    module.__spec__ = types.SimpleNamespace(name="wandb")
    module.init = lambda **kwargs: run
    monkeypatch.setitem(sys.modules, "wandb", module)
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: object() if name == "wandb" else None)


@pytest.mark.parametrize("content, words", [("{oops", "is not valid JSON"), ('["abc"]', "does not hold")])
def test_a_hand_edited_wandb_json_is_one_line_on_resume(tmp_path, fake_wandb, cli_error, content, words):
    run = train(tmp_path, TINY_TEXT, "run", "train.wandb.project=xf")
    (run / "wandb.json").write_text(content)
    cli_error(["train", "--resume", run, "--quiet"], str(run / "wandb.json"), words, "delete it")


@pytest.fixture(scope="module")
def distilled(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("handedit_distill")
    teacher = train(folder, TEACHER, "teacher")
    return train(folder, {**STUDENT, "distill": {"teacher": str(teacher)}}, "student")


@pytest.mark.parametrize("content, words", [("{oops", "is not valid JSON"), ('{"teacher": 3}', "does not hold")])
def test_a_hand_edited_teacher_json_is_one_line_on_resume(distilled, tmp_path, cli_error, content, words):
    run = copy_of(distilled, tmp_path)
    assert main(["train", "--resume", str(run), "--quiet"]) == 0  # as written, the copy resumes
    (run / "teacher.json").write_text(content)
    cli_error(["train", "--resume", run, "--quiet"], str(run / "teacher.json"), words, "restore it")


# ---- 3. an unknown key typed into a run's config.yaml ---------------------------------------------------------------
def test_an_unknown_key_in_a_runs_config_yaml_names_the_file(series, tmp_path, cli_error):
    run = copy_of(series["run"], tmp_path)
    text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(text.replace("\ntrain:\n", "\ntrain:\n  bogus_key: 1\n"))
    named = str(run / "config.yaml")
    cli_error(["evaluate", run], named, "unknown config key 'train.bogus_key'")
    cli_error(["train", "--resume", run, "--quiet"], named, "unknown config key 'train.bogus_key'")
    # an override's own mistake is not the file's
    err = cli_error(["train", str(series["folder"] / "run.yaml"), "train.bogus=1", "--out", tmp_path / "x"],
                    "unknown config key 'train.bogus'")
    assert "run.yaml" not in err


# ---- 4. a label beyond the model's classes --------------------------------------------------------------------------
class Images(Dataset):
    def __init__(self, labels):
        self.x, self.y = torch.rand(len(labels), 1, 8, 8), torch.tensor(labels)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"images": self.x[i], "labels": self.y[i]}


def vit(n_classes: int = 3):
    return build_model(ModelConfig(
        architecture="encoder", core=CoreConfig(d_model=16, n_layers=1, n_heads=2),
        tokenizer=PartConfig("image_patches", {"image_size": 8, "patch_size": 2, "channels": 1}),
        head=PartConfig("classification", {"n_classes": n_classes})))


def test_a_label_beyond_the_classes_is_refused_in_one_line():
    good, bad = Images([0, 1, 2, 0] * 4), Images([0, 1, 2, 5] * 4)
    config = TrainConfig(steps=2, batch_size=8, eval_every=2, device="cpu")
    with pytest.raises(ConfigError) as e:
        Trainer(vit(), DataBundle(train=bad), config, None, World()).fit()
    assert "\n" not in str(e.value) and "label 5" in str(e.value) and "3 classes" in str(e.value), e.value
    trainer = Trainer(vit(), DataBundle(train=good, val=bad), config, None, World())
    with pytest.raises(ConfigError, match=r"the val data gives label 5.*3 classes"):
        trainer.evaluate("val")
    negative = Images([0, 1, 2, -1] * 4)
    with pytest.raises(ConfigError, match="label -1"):
        Trainer(vit(), DataBundle(train=negative), config, None, World()).fit()
    Trainer(vit(), DataBundle(train=Images([0, 1, 2, -100] * 4)), config, None, World()).fit()  # ignore_index



class Windows(Dataset):
    def __init__(self, labels):
        self.x, self.y = torch.randn(len(labels), 16, 2), torch.tensor(labels)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"inputs": self.x[i], "labels": self.y[i]}


@pytest.mark.parametrize("name, args, data", [
    ("fcn", {"n_channels": 2, "input_len": 16, "widths": [4, 4, 4]}, Windows),
    ("resnet1d", {"n_channels": 2, "input_len": 16, "widths": [4, 4, 4]}, Windows),
    ("cnn", {"image_size": 8, "channels": 1, "widths": [4, 4]}, Images),
    ("mlp", {"image_size": 8, "channels": 1}, Images),
])
def test_a_baseline_built_in_python_refuses_a_label_beyond_its_classes(name, args, data):
    """docs/series.md's Trainer(build_baseline("fcn", ...), bundle, ...): a baseline has no ModelConfig, so
    the Trainer, given no recipe, knew no n_classes and a label of 5 was an IndexError in cross_entropy (a
    device-side assert on a GPU)."""
    from xformer.baselines import build_baseline

    config = TrainConfig(steps=2, batch_size=8, eval_every=2, device="cpu")
    for model in (build_baseline(name, n_classes=3, **args),
                  build_model(ModelConfig(baseline=PartConfig(name, {"n_classes": 3, **args})))):
        with pytest.raises(ConfigError, match=r"the training data gives label 5, but the model predicts 3 classes"):
            Trainer(model, DataBundle(train=data([0, 1, 2, 5] * 4)), config, None, World()).fit()
        Trainer(model, DataBundle(train=data([0, 1, 2, -100] * 4)), config, None, World()).fit()  # ignore_index


# ---- 5. init_from a series run of another input_len -----------------------------------------------------------------
def test_init_from_a_run_of_another_input_len_names_both_lengths(series, tmp_path, cli_error):
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(series_recipe(series["csv"], input_len=32)))
    cli_error(["train", tmp_path / "r.yaml", f"init_from={series['run']}", "--out", tmp_path / "x"],
              "data.args.input_len 24", "this recipe's 32", "data.args.input_len=24")
    assert not (tmp_path / "x").exists()


# ---- 6. the other readers of a run's classes.json and series_scaler.json --------------------------------------------
@pytest.mark.parametrize("content, words", [("{oops", "is not valid JSON"), ("[1]", "does not hold")])
def test_a_hand_edited_classes_json_of_a_run_started_from_is_one_line(distilled, tmp_path, cli_error, content, words):
    """init_from and distill.teacher read the other run's classes.json (a traceback before)."""
    teacher = copy_of(distilled.parent / "teacher", tmp_path)
    (teacher / "classes.json").write_text(content)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(TEACHER))
    cli_error(["train", tmp_path / "r.yaml", f"init_from={teacher}", "--out", tmp_path / "a"],
              str(teacher / "classes.json"), words)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({**STUDENT, "distill": {"teacher": str(teacher)}}))
    cli_error(["train", tmp_path / "s.yaml", "--out", tmp_path / "b"], str(teacher / "classes.json"), words)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_hand_edited_series_scaler_is_one_line_when_scored_on_other_data(series, tmp_path, cli_error):
    run = copy_of(series["run"], tmp_path)
    (run / "series_scaler.json").write_text("{oops")
    shutil.copy(series["csv"], tmp_path / "other.csv")
    cli_error(["evaluate", run, f"data.args.path={tmp_path / 'other.csv'}"], str(run / "series_scaler.json"),
              "is not valid JSON", "restore it")


@pytest.mark.parametrize("key, value", [("n_channels", None), ("mean", "x")], ids=["no-n_channels", "mean-text"])
def test_a_hand_edited_series_classifiers_scaler_is_one_line_on_predict(tmp_path, cli_error, key, value):
    from series_class_helpers import train_on_waves

    train_on_waves(tmp_path)
    run = tmp_path / "run"
    edit_json(run / "series_scaler.json", lambda v: v.pop(key) if value is None else v.update({key: value}))
    cli_error(["predict", run, tmp_path / "TEST.tsv"], str(run / "series_scaler.json"), "restore them")
