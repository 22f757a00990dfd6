"""`xformer evaluate RUN data.args.KEY=VALUE`: a trained run scored on other data of the same task, and refused
in one line when that data implies another model or names its classes or columns differently."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from xformer.cli import main
from xformer.train.run import evaluate_run

CORE = {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32}


def write_images(root, classes=("a", "b"), shift=0):
    for split, n in (("train", 6), ("val", 3), ("test", 3)):
        for k, name in enumerate(classes):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (8, 8), ((200 * k + shift) % 256, 30 * i, 100)).save(root / split / name / f"{i}.png")


def train(tmp_path, recipe: dict, name: str):
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(recipe))
    run = tmp_path / name
    torch.set_num_threads(1)
    assert main(["train", str(tmp_path / f"{name}.yaml"), "--out", str(run), "--quiet", "--threads", "1"]) == 0
    return run


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evaluate_other")
    write_images(tmp / "images")
    recipe = {"model": {"architecture": "encoder", "core": CORE,
                        "tokenizer": {"name": "image_patches", "args": {"patch_size": 4}},
                        "head": {"name": "classification"}},
              "data": {"name": "image_folder", "args": {"root": str(tmp / "images"), "image_size": 8}},
              "train": {"steps": 6, "batch_size": 4, "eval_every": 3}}
    return tmp, train(tmp, recipe, "run")


def test_other_images_of_the_same_classes_are_scored(image_run):
    tmp, run = image_run
    own = evaluate_run(run)
    copy = tmp / "copy"
    shutil.copytree(tmp / "images", copy)
    assert evaluate_run(run, data_overrides=[f"data.args.root={copy}"]) == own  # the same images: the same scores
    other = tmp / "other"
    write_images(other, shift=90)  # other colours, same classes
    scored = evaluate_run(run, data_overrides=[f"data.args.root={other}"])
    assert set(scored) == set(own) and scored["test_loss"] != own["test_loss"]


def test_a_folder_of_class_folders_alone_is_scored_as_the_test_split(image_run, capsys):
    """timm's validate.py reads ROOT/<class>/*: such a folder was refused ('holds no train/, val/ or test/
    folder'); it is now the test split of data to evaluate a run on, as ROOT/test/ is, and training on it says
    how to lay it out."""
    tmp, run = image_run
    assert evaluate_run(run, data_overrides=[f"data.args.root={tmp / 'images' / 'test'}"]) == \
        {key: value for key, value in evaluate_run(run).items() if key.startswith("test_")}
    capsys.readouterr()
    assert main(["train", str(tmp / "run.yaml"), f"data.args.root={tmp / 'images' / 'test'}", "--out",
                 str(tmp / "flat_run")]) == 2
    err = capsys.readouterr().err
    assert "has no train/ folder" in err and "data/image_folder/prepare.py" in err and err.count("\n") == 1, err
    assert not (tmp / "flat_run").exists()


@pytest.mark.parametrize("classes, message", [
    (("a", "b", "c"), "the data gives head.n_classes=3, but the model of {run} has 2; evaluate it on data of the same shape"),
    (("a", "z"), "the data's class names ['a', 'z'] are not the run's ['a', 'b']"),
])
def test_other_classes_are_refused_in_one_line(image_run, capsys, classes, message):
    tmp, run = image_run
    other = tmp / "-".join(classes)
    write_images(other, classes)
    assert main(["evaluate", str(run), f"data.args.root={other}"]) == 2
    err = capsys.readouterr().err
    assert message.format(run=run) in err and err.count("\n") == 1


def test_only_data_arguments_may_change(image_run, capsys):
    _, run = image_run
    assert main(["evaluate", str(run), "model.core.d_model=32"]) == 2
    assert "evaluate takes data.args.KEY=VALUE only" in capsys.readouterr().err


def test_a_forecaster_on_another_file_with_the_same_columns(tmp_path, capsys):
    t = np.arange(400)
    frame = pd.DataFrame({"date": pd.date_range("2021-01-01", periods=400, freq="h"),
                          "load": np.sin(2 * np.pi * t / 24), "temp": np.cos(2 * np.pi * t / 24)})
    frame.to_csv(tmp_path / "a.csv", index=False)
    recipe = {"model": {"architecture": "encoder", "core": CORE,
                        "tokenizer": {"name": "series_patches", "args": {"patch_len": 8, "stride": 4}},
                        "head": {"name": "forecast"}},
              "data": {"name": "csv_series", "args": {"path": str(tmp_path / "a.csv"), "input_len": 24, "horizon": 8}},
              "train": {"steps": 4, "batch_size": 16, "eval_every": 4}}
    run = train(tmp_path, recipe, "series")
    frame.assign(load=frame["load"] * 2).to_csv(tmp_path / "b.csv", index=False)
    capsys.readouterr()  # train's own report
    assert main(["evaluate", str(run), f"data.args.path={tmp_path / 'b.csv'}"]) == 0
    assert json.loads(capsys.readouterr().out)["test_mse"] > 0
    frame.rename(columns={"temp": "wind"}).to_csv(tmp_path / "c.csv", index=False)
    assert main(["evaluate", str(run), f"data.args.path={tmp_path / 'c.csv'}"]) == 2
    assert "the data's columns ['load', 'wind'] are not the run's ['load', 'temp']" in capsys.readouterr().err
