"""A series classification run given its UCR files by relative paths records test_path absolute, as path, so
`xformer evaluate` and `--resume` from another directory read the run's own test file (before, from another
directory they read that directory's TEST.tsv, another data set's, and scored it without a word), and the run's
record of its data (data_split.json: a SHA-256 of each split's windows) refuses a test file replaced by another
of the same size."""
import json

import numpy as np
import yaml

from xformer.cli import main

RECIPE = {"model": {"architecture": "encoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
                    "tokenizer": {"name": "series_patches", "args": {"patch_len": 8, "stride": 8}},
                    "head": {"name": "classification", "args": {"pool": "mean"}}},
          "data": {"name": "series_classification", "args": {"path": "TRAIN.tsv", "test_path": "TEST.tsv"}},
          "train": {"steps": 4, "batch_size": 8, "eval_every": 4}}


def write_ucr(path, seed, flip=False):
    rng = np.random.default_rng(seed)
    rows = []
    for label in ["a", "b"] * 12:
        wave = np.sin(np.arange(32) * (0.3 if label == "a" else 0.9) + rng.uniform(0, 6))
        shown = {"a": "b", "b": "a"}[label] if flip else label
        rows.append("\t".join([shown] + [f"{v:.3f}" for v in wave]))
    path.write_text("\n".join(rows) + "\n")


def test_test_path_is_recorded_absolute_and_checked(tmp_path, monkeypatch, capsys):
    for name, seed in (("ds1", 0), ("ds2", 2)):
        (tmp_path / name).mkdir()
        write_ucr(tmp_path / name / "TRAIN.tsv", seed)
        write_ucr(tmp_path / name / "TEST.tsv", seed + 1, flip=name == "ds2")
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(RECIPE))
    monkeypatch.chdir(tmp_path / "ds1")
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "r.yaml"), "--out", str(run), "--quiet", "--threads", "1"]) == 0
    trained = json.loads(capsys.readouterr().out)
    args = yaml.safe_load((run / "config.yaml").read_text())["data"]["args"]
    assert (args["path"], args["test_path"]) == (str(tmp_path / "ds1" / "TRAIN.tsv"), str(tmp_path / "ds1" / "TEST.tsv"))
    assert "content" in json.loads((run / "data_split.json").read_text())["splits"]["test"]

    monkeypatch.chdir(tmp_path / "ds2")  # another data set's TEST.tsv here: the run's own is read
    assert main(["evaluate", str(run)]) == 0
    assert json.loads(capsys.readouterr().out)["test_accuracy"] == trained["test_accuracy"]
    assert main(["train", "--resume", str(run), "train.steps=6", "--quiet", "--threads", "1"]) == 0
    capsys.readouterr()

    write_ucr(tmp_path / "ds1" / "TEST.tsv", 5)  # the same size and labels, other series
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert "test holds other content, as many examples" in err and err.count("\n") == 1, err


def write_length(path, length):
    rng = np.random.default_rng(length)
    path.write_text("\n".join("\t".join([label] + [f"{v:.3f}" for v in rng.normal(size=length)])
                              for label in ["a", "b"] * 12) + "\n")


def test_init_from_a_classifier_of_another_series_length_names_both_lengths(tmp_path, capsys):
    """The series' length is the data's own (no data.args.input_len): the refusal named only the shapes of the
    positions (15 vs 20 patches), not the lengths that made them."""
    for name, length in (("short", 32), ("long", 48)):
        (tmp_path / name).mkdir()
        for split in ("TRAIN", "TEST"):
            write_length(tmp_path / name / f"{split}.tsv", length)
    recipe = {**RECIPE, "model": {**RECIPE["model"], "tokenizer": {"name": "series_patches",
                                                                   "args": {"patch_len": 8, "stride": 8,
                                                                            "positions": "learned"}}}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    data = lambda name: [f"data.args.path={tmp_path / name / 'TRAIN.tsv'}",  # noqa: E731
                         f"data.args.test_path={tmp_path / name / 'TEST.tsv'}"]
    assert main(["train", str(tmp_path / "r.yaml"), *data("short"), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["train", str(tmp_path / "r.yaml"), *data("long"), f"init_from={tmp_path / 'a'}",
                 "--out", str(tmp_path / "b"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "the pre-trained run read model.tokenizer.args.input_len 32, this recipe's 48" in err, err
    assert "give series of 32 steps" in err and not (tmp_path / "b").exists()
