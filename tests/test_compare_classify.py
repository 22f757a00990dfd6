"""`xformer compare --domains classify`: the PatchTST-style series classifier beside FCN and ResNet, on the
generated Synthetic Control Chart set or on UCR-format files given with --classify-data TRAIN [TEST]."""
import json
import os

import numpy as np
import pytest

from xformer.cli import main
from xformer.compare import CompareConfig, entries
from xformer.config import ConfigError
from xformer.data.series_classification import synthetic_control

TINY = ["--steps", "3", "--d-model", "16", "--layers", "1", "--heads", "2", "--batch-size", "16", "--quiet"]
NAMES = ["PatchTST classifier (encoder)", "FCN (Wang et al. 2017)", "ResNet (Wang et al. 2017)"]


def _ucr(path, n_per_class, seed):
    """A UCR-archive .tsv: per line the class label, then the values of one series, tab-separated."""
    x, y = synthetic_control(n_per_class, length=32, seed=seed)
    path.write_text("".join("\t".join([str(label + 1), *(f"{v:.4f}" for v in row[:, 0])]) + "\n"
                            for row, label in zip(x, y)))
    return path


def test_classify_ranks_the_three_models_by_test_accuracy(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["compare", *TINY, "--domains", "classify", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    info = results["domains"]["classify"]
    assert list(results["domains"]) == ["classify"]
    assert (info["metric"], info["direction"], info["split"]) == ("test_accuracy", "max", "test")
    assert [m["name"] for m in info["models"]] == NAMES
    assert set(info["ranking"]["rank"]) == set(NAMES) and info["ranking"]["best"] in NAMES
    for row in info["models"]:
        assert 0.0 <= row["metric"] <= 1.0 and row["steps"] == 3 and "test_loss" in row["metrics"]
    transformer = info["models"][0]
    assert transformer["tokens_per_example"] == 15  # (60 - 8) // 4 + 1 patches + 1 padded at the end
    assert transformer["attention_flops"] > 0 and info["models"][1]["attention_flops"] is None
    assert info["data"]["sizes"] == {"train": 432, "val": 48, "test": 120}  # 600 series: 80/20, 10% of train
    assert "Synthetic Control" in info["data"]["name"]
    measures = info["attention_measures"]
    assert measures and {m["unit"] for m in measures} == {"time steps"}
    assert all(m["distance_unit"] == pytest.approx(4 * m["distance_tokens"], abs=0.01) for m in measures)  # stride
    md = (out / "report.md").read_text()
    for text in ("## classify", "test accuracy (mean ± s)", "test loss (mean ± s)", "## classify: inside the "
                 "transformer", "| PatchTST classifier (encoder) |", "| ResNet (Wang et al. 2017) |"):
        assert text in md, text
    assert "classify (test_accuracy" in capsys.readouterr().out


def test_classify_data_reads_a_ucr_training_file_and_its_test_file(tmp_path):
    train, test = _ucr(tmp_path / "Tiny_TRAIN.tsv", 20, 0), _ucr(tmp_path / "Tiny_TEST.tsv", 10, 1)
    out = tmp_path / "report"
    assert main(["compare", *TINY, "--domains", "classify", "--classify-data", str(train), str(test),
                 "--out", str(out)]) == 0
    info = json.loads((out / "results.json").read_text())["domains"]["classify"]
    assert info["data"]["name"] == "Tiny_TRAIN.tsv" and str(test) in info["data"]["source"]
    assert info["data"]["sizes"] == {"train": 108, "val": 12, "test": 60}  # the test file whole, 10% of train
    assert "32 steps" in info["data"]["item"] and "(of 6)" in info["data"]["item"]
    assert [m["name"] for m in info["models"]] == NAMES
    assert info["models"][0]["tokens_per_example"] == 8  # (32 - 8) // 4 + 1 + 1
    assert all(0.0 <= m["metric"] <= 1.0 for m in info["models"])


def test_one_classify_file_is_split_and_the_data_goes_to_every_model(tmp_path):
    train = str(tmp_path / "a.tsv")
    for files, args in ((None, {"val_fraction": 0.1}), ([train], {"val_fraction": 0.1, "path": train}),
                        ([train, "b.tsv"], {"val_fraction": 0.1, "path": train,
                                            "test_path": os.path.abspath("b.tsv")})):  # recorded absolute
        found = entries(CompareConfig(domains=["classify"], classify_data=files))
        assert [e.name for e in found] == NAMES
        assert all(e.experiment["data"] == {"name": "series_classification", "args": args} for e in found)
    core = {e.domain: e.experiment["model"]["core"] for e in entries(CompareConfig(domains=["series", "classify"]))
            if e.kind == "transformer"}
    assert core["series"] == core["classify"]  # the one shared core
    with pytest.raises(ConfigError, match="a training file and, optionally, its test file; got 3"):
        CompareConfig(domains=["classify"], classify_data=["a", "b", "c"])


def test_a_missing_classify_file_is_one_line(tmp_path, capsys):
    for argv in (["--classify-data", str(tmp_path / "nope.tsv")],
                 ["--classify-data", str(_ucr(tmp_path / "x.tsv", 5, 0)), str(tmp_path / "nope_TEST.tsv")]):
        assert main(["compare", *TINY, "--domains", "classify", *argv, "--out", str(tmp_path / "z")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "data file not found" in err and "nope" in err and "Traceback" not in err
    assert not (tmp_path / "z").exists()


def test_a_class_of_one_training_series_is_refused_in_compare_s_terms(tmp_path, capsys):
    """As UCR's Fungi: one training series a class leaves no stratified validation split. The data's fix
    (data.args.val_fraction=0) is no option of compare: the line names what compare can take."""
    x, y = synthetic_control(1, length=32, seed=0)
    train = tmp_path / "Fungi_TRAIN.tsv"
    train.write_text("".join("\t".join([str(label + 1), *(f"{v:.4f}" for v in row[:, 0])]) + "\n"
                             for row, label in zip(x, y)))
    test = _ucr(tmp_path / "Fungi_TEST.tsv", 5, 1)
    assert main(["compare", *TINY, "--domains", "classify", "--classify-data", str(train), str(test),
                 "--out", str(tmp_path / "z")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "have one series each" in err and "at least two training series a class" in err
    assert "give data.args.val_fraction=0" not in err and not (tmp_path / "z").exists()


def test_help_names_the_classify_domain_and_its_option(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "text,images,series,seq2seq,classify" in text and "--classify-data TRAIN [TEST" in text
