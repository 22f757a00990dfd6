"""A run's own data changed since it was trained (a class folder renamed or added, images added so that the carved
validation split moves, rows appended to a series, config.yaml's split edited): ``--resume`` and ``evaluate``
refuse in one line naming what changed, and never rewrite the run's classes.json or series_scaler.json."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from xformer.cli import main
from xformer.config import ConfigError
from xformer.train.data_identity import SPLIT_FILE
from xformer.train.run import evaluate_run

CORE = {"d_model": 8, "n_layers": 1, "n_heads": 2, "d_ff": 16}
CHANGED = "changed since it was trained"


def write_images(root, classes=("a", "b"), splits=(("train", 6), ("val", 2), ("test", 2)), prefix=""):
    for split, n in splits:
        for k, name in enumerate(classes):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.new("RGB", (8, 8), (120 * k, 20 * i, 60)).save(root / split / name / f"{prefix}{i}.png")


def train(tmp_path, data: dict, model: dict, name="run", steps=4, batch_size=4):
    recipe = {"model": {"architecture": "encoder", "core": CORE, **model}, "data": data,
              "train": {"steps": steps, "batch_size": batch_size, "eval_every": 2, "log_every": 2}}
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(recipe))
    torch.set_num_threads(1)
    run = tmp_path / name
    assert main(["train", str(tmp_path / f"{name}.yaml"), "--out", str(run), "--quiet", "--threads", "1"]) == 0
    return run


def image_run(tmp_path, **args):
    model = {"tokenizer": {"name": "image_patches", "args": {"patch_size": 4}}, "head": {"name": "classification"}}
    return train(tmp_path, {"name": "image_folder", "args": {"root": str(tmp_path / "images"), "image_size": 8,
                                                            **args}}, model)


def refused(capsys, argv, *words):
    """``xformer ARGV`` ends with status 2 and one line holding every one of ``words``."""
    assert main([*argv, "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


def test_a_renamed_class_folder_is_refused_and_classes_json_kept(tmp_path, capsys):
    write_images(tmp_path / "images")
    run = image_run(tmp_path)
    classes = (run / "classes.json").read_text()
    for split in ("train", "val", "test"):
        (tmp_path / "images" / split / "b").rename(tmp_path / "images" / split / "xb")
    refused(capsys, ["evaluate", str(run)], CHANGED, "['b'] gone, ['xb'] new", "restore data.args.root")
    refused(capsys, ["train", "--resume", str(run), "train.steps=8", "--quiet"], CHANGED, "--resume continues")
    assert (run / "classes.json").read_text() == classes  # predict still names the run's classes
    for split in ("train", "val", "test"):  # restored: both work again
        (tmp_path / "images" / split / "xb").rename(tmp_path / "images" / split / "b")
    assert set(evaluate_run(run)) >= {"val_accuracy", "test_accuracy"}
    assert main(["train", "--resume", str(run), "train.steps=6", "--quiet", "--threads", "1"]) == 0
    assert (run / "classes.json").read_text() == classes


def test_a_class_added_is_refused_in_one_line_not_an_index_error(tmp_path, capsys):
    write_images(tmp_path / "images")
    run = image_run(tmp_path)
    write_images(tmp_path / "images", classes=("c",))
    refused(capsys, ["evaluate", str(run)], CHANGED, "['c'] new")
    err = refused(capsys, ["train", "--resume", str(run), "train.steps=8", "--quiet"], CHANGED, "['c'] new")
    assert "remove model.head.args.n_classes" not in err


def test_images_added_move_the_carved_validation_split(tmp_path, capsys):
    write_images(tmp_path / "images", splits=(("train", 8), ("test", 2)))
    run = image_run(tmp_path, val_fraction=0.25)
    own = evaluate_run(run)
    write_images(tmp_path / "images", splits=(("train", 4),), prefix="n")  # 4 more per class: another val split
    refused(capsys, ["evaluate", str(run)], CHANGED, "train holds 18 examples instead of 12", str(run / SPLIT_FILE))
    refused(capsys, ["train", "--resume", str(run), "train.steps=8", "--quiet"], CHANGED)
    for path in (tmp_path / "images" / "train").glob("*/n*.png"):
        path.unlink()
    assert evaluate_run(run) == own


def test_images_replaced_by_others_of_the_same_count_are_refused(tmp_path):
    write_images(tmp_path / "images", splits=(("train", 8), ("test", 2)))
    run = image_run(tmp_path, val_fraction=0.25)
    (tmp_path / "images" / "train" / "a" / "0.png").rename(tmp_path / "images" / "train" / "a" / "z.png")
    with pytest.raises(ConfigError, match="train holds other files"):
        evaluate_run(run)


def test_config_yaml_edited_to_split_otherwise_is_refused_by_evaluate(tmp_path, capsys):
    write_images(tmp_path / "images", splits=(("train", 8), ("test", 2)))
    run = image_run(tmp_path, val_fraction=0.25)
    (run / SPLIT_FILE).unlink(missing_ok=True)  # as a run from before the record: the checkpoint's state.json still tells
    config = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(config.replace("val_fraction: 0.25", "val_fraction: 0.5"))
    refused(capsys, ["evaluate", str(run)], "gives data.args.val_fraction=0.5, but the run was trained with 0.25",
            "undo the edit of config.yaml")


def test_unchanged_data_moved_whole_and_older_runs_still_evaluate(tmp_path):
    write_images(tmp_path / "images", splits=(("train", 8), ("test", 2)))
    run = image_run(tmp_path, val_fraction=0.25)
    own = evaluate_run(run)
    shutil.move(tmp_path / "images", tmp_path / "moved")  # the same files elsewhere, config.yaml pointed there
    config = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(config.replace(str(tmp_path / "images"), str(tmp_path / "moved")))
    assert evaluate_run(run) == own
    (run / SPLIT_FILE).unlink(missing_ok=True)  # a run from before data_split.json: the checks its other files allow
    assert evaluate_run(run) == own


def series_frame(n_rows: int) -> pd.DataFrame:
    t = np.arange(n_rows)
    return pd.DataFrame({"date": pd.date_range("2021-01-01", periods=n_rows, freq="h"),
                         "y": np.sin(t / 6.0) + 0.01 * t})


def test_rows_appended_to_a_series_are_refused_and_its_scaler_kept(tmp_path, capsys):
    series_frame(240).to_csv(tmp_path / "s.csv", index=False)
    model = {"tokenizer": {"name": "series_patches", "args": {"patch_len": 8, "stride": 8}}, "head": {"name": "forecast"}}
    run = train(tmp_path, {"name": "csv_series", "args": {"path": str(tmp_path / "s.csv"), "input_len": 24,
                                                          "horizon": 8}}, model)
    scaler = (run / "series_scaler.json").read_text()
    own = evaluate_run(run)
    series_frame(360).to_csv(tmp_path / "s.csv", index=False)
    refused(capsys, ["evaluate", str(run)], CHANGED, "validation_end", "the training rows' mean and scale differ",
            "restore data.args.path")
    refused(capsys, ["train", "--resume", str(run), "train.steps=8", "--quiet"], CHANGED, "validation_end")
    assert (run / "series_scaler.json").read_text() == scaler
    assert json.loads(scaler)["validation_end"] == "2021-01-08T23:00:00"
    series_frame(240).to_csv(tmp_path / "s.csv", index=False)
    assert evaluate_run(run) == own
