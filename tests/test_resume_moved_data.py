"""``--resume`` on a run whose data moved whole: accepted when the run's records (data_split.json, classes.json,
series_scaler.json) prove the data at the new place its own, and the resume then continues as if nothing moved
(config.yaml records the new place); refused in one line saying why otherwise."""
import json
import shutil

import numpy as np
import pandas as pd
import torch
import yaml
from PIL import Image

from xformer.cli import main
from xformer.train.checkpoint import checkpoint_dir, read_eval_weights
from xformer.train.data_identity import SPLIT_FILE
from xformer.train.run import evaluate_run

CORE = {"d_model": 8, "n_layers": 1, "n_heads": 2, "d_ff": 16}
IMAGE_MODEL = {"tokenizer": {"name": "image_patches", "args": {"patch_size": 4}}, "head": {"name": "classification"}}
SERIES_MODEL = {"tokenizer": {"name": "series_patches", "args": {"patch_len": 8, "stride": 8}},
                "head": {"name": "forecast"}}


def write_images(root, classes=("a", "b"), splits=(("train", 6), ("val", 2), ("test", 2))):
    for split, n in splits:
        for k, name in enumerate(classes):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.new("RGB", (8, 8), (120 * k, 20 * i, 60)).save(root / split / name / f"{i}.png")


def train(tmp_path, data: dict, model: dict, name="run", steps=4):
    recipe = {"model": {"architecture": "encoder", "core": CORE, **model}, "data": data,
              "train": {"steps": steps, "batch_size": 4, "eval_every": 2, "log_every": 2}}
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(recipe))
    torch.set_num_threads(1)
    run = tmp_path / name
    assert main(["train", str(tmp_path / f"{name}.yaml"), "--out", str(run), "--quiet", "--threads", "1"]) == 0
    return run


def image_run(tmp_path, name="run"):
    return train(tmp_path, {"name": "image_folder", "args": {"root": str(tmp_path / "images"), "image_size": 8,
                                                            "val_fraction": 0.25}}, IMAGE_MODEL, name)


def resume(run, *overrides) -> int:
    return main(["train", "--resume", str(run), "train.steps=8", *overrides, "--quiet", "--threads", "1"])


def refused(capsys, run, *overrides) -> str:
    """The resume ends with status 2 and one line, returned."""
    assert resume(run, *overrides) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def final_state(run) -> tuple[dict, dict]:
    weights = read_eval_weights(checkpoint_dir(run / "checkpoints", "latest"))
    metrics = json.loads((run / "metrics.json").read_text())
    return weights, {k: v for k, v in metrics.items() if k != "train_seconds"}


def assert_same_run(one, other):
    (weights, metrics), (weights_2, metrics_2) = final_state(one), final_state(other)
    assert metrics == metrics_2
    assert weights.keys() == weights_2.keys()
    for key in weights:
        assert torch.equal(weights[key], weights_2[key]), key


def test_a_moved_image_folder_resumes_as_if_it_had_not_moved(tmp_path):
    write_images(tmp_path / "images", splits=(("train", 8), ("test", 2)))  # a carved val split: moves on any change
    run = image_run(tmp_path)
    shutil.copytree(run, tmp_path / "still")  # the same run, resumed where its data stayed
    for name in ("config.yaml", "metrics.jsonl"):  # its own folder named, as if it had been trained there
        text = (tmp_path / "still" / name).read_text() if (tmp_path / "still" / name).is_file() else None
        if text is not None:
            (tmp_path / "still" / name).write_text(text.replace(str(run), str(tmp_path / "still")))
    assert resume(tmp_path / "still") == 0
    shutil.move(tmp_path / "images", tmp_path / "moved")
    assert resume(run, f"data.args.root={tmp_path / 'moved'}") == 0
    assert_same_run(run, tmp_path / "still")
    recorded = yaml.safe_load((run / "config.yaml").read_text())["data"]["args"]["root"]
    assert recorded == str(tmp_path / "moved")  # the next resume and evaluate read it there
    assert set(evaluate_run(run)) >= {"val_accuracy", "test_accuracy"}


def test_a_moved_folder_edited_on_the_way_is_refused(tmp_path, capsys):
    write_images(tmp_path / "images")
    run = image_run(tmp_path)
    shutil.move(tmp_path / "images", tmp_path / "moved")
    (tmp_path / "moved" / "train" / "a" / "0.png").rename(tmp_path / "moved" / "train" / "a" / "z.png")
    err = refused(capsys, run, f"data.args.root={tmp_path / 'moved'}")
    for words in (f"the data at {tmp_path / 'moved'} (data.args.root) is not the run's", "train holds other files",
                  f"move it back to {tmp_path / 'images'}"):
        assert words in err, err
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["args"]["root"] == str(tmp_path / "images")


def test_a_run_without_data_split_json_is_refused_naming_why(tmp_path, capsys):
    write_images(tmp_path / "images")
    run = image_run(tmp_path)
    (run / SPLIT_FILE).unlink()  # as a run from before the record
    shutil.move(tmp_path / "images", tmp_path / "moved")
    config = (run / "config.yaml").read_text()  # pointed there by hand, as the audit did
    (run / "config.yaml").write_text(config.replace(str(tmp_path / "images"), str(tmp_path / "moved")))
    err = refused(capsys, run)
    for words in ("cannot change data.args.root", f"records no {SPLIT_FILE}",
                  f"move the data back to {tmp_path / 'images'}"):
        assert words in err, err
    shutil.move(tmp_path / "moved", tmp_path / "images")  # moved back (and the edit undone): it resumes
    (run / "config.yaml").write_text(config)
    assert resume(run) == 0


def series_frame(n_rows: int) -> pd.DataFrame:
    t = np.arange(n_rows)
    return pd.DataFrame({"date": pd.date_range("2021-01-01", periods=n_rows, freq="h"),
                         "y": np.sin(t / 6.0) + 0.01 * t})


def test_a_moved_series_file_resumes_and_another_series_there_is_refused(tmp_path, capsys):
    series_frame(240).to_csv(tmp_path / "s.csv", index=False)
    run = train(tmp_path, {"name": "csv_series", "args": {"path": str(tmp_path / "s.csv"), "input_len": 24,
                                                          "horizon": 8}}, SERIES_MODEL)
    (tmp_path / "elsewhere").mkdir()
    series_frame(360).to_csv(tmp_path / "elsewhere" / "s.csv", index=False)  # not the run's rows
    err = refused(capsys, run, f"data.args.path={tmp_path / 'elsewhere' / 's.csv'}")
    assert "is not the run's" in err and "validation_end" in err, err
    shutil.move(tmp_path / "s.csv", tmp_path / "elsewhere" / "s.csv")
    assert resume(run, f"data.args.path={tmp_path / 'elsewhere' / 's.csv'}") == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["args"]["path"] == \
        str(tmp_path / "elsewhere" / "s.csv")


def test_a_moved_text_file_resumes_and_another_text_of_the_same_length_is_refused(tmp_path, capsys):
    """The split record of a text run holds the SHA-256 of each split's ids (``content``): the file moved whole
    is provably the run's own; a text of the same length and characters is not, for resume and evaluate alike."""
    (tmp_path / "t.txt").write_text("abcde" * 200)
    model = {"architecture": "decoder", "tokenizer": {"name": "text"}, "head": {"name": "causal_lm"}}
    run = train(tmp_path, {"name": "text_lm", "args": {"files": str(tmp_path / "t.txt"), "tokenizer": "char",
                                                       "block_size": 8}}, model)
    assert "content" in json.loads((run / SPLIT_FILE).read_text())["splits"]["train"]
    shutil.move(tmp_path / "t.txt", tmp_path / "u.txt")
    capsys.readouterr()
    err = refused(capsys, run)  # was the dataset's "does not exist; ... (or no files for the built-in corpus)"
    assert f"the run's data {tmp_path / 't.txt'} (data.args.files) is not there any more" in err, err
    assert f"xformer train --resume {run} data.args.files=NEW" in err, err
    assert main(["evaluate", str(run)]) == 2
    assert f"give its new place: xformer evaluate {run} data.args.files=NEW" in capsys.readouterr().err
    assert resume(run, f"data.args.files={tmp_path / 'u.txt'}") == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["args"]["files"] == str(tmp_path / "u.txt")
    capsys.readouterr()
    (tmp_path / "u.txt").write_text("edcba" * 200)  # the same length and characters: the same vocabulary
    err = refused(capsys, run, "train.steps=10")
    for words in ("train holds other content", "restore data.args.files"):
        assert words in err, err
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert "the data of" in err and "holds other content" in err and err.count("\n") == 1, err
    (tmp_path / "u.txt").write_text("abcde" * 200)
    shutil.move(tmp_path / "u.txt", tmp_path / "v.txt")
    (tmp_path / "w.txt").write_text("edcba" * 200)
    err = refused(capsys, run, f"data.args.files={tmp_path / 'w.txt'}", "train.steps=10")
    assert f"the data at {tmp_path / 'w.txt'}" in err and "is not the run's" in err, err
