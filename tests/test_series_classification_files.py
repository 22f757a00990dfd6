"""UCR and .npz files as sktime / aeon / tsai users hold them: the space-separated .txt of
timeseriesclassification.com (labels in float form), ragged rows of unequal-length series in any order, (N, C, L)
arrays, object label arrays, a header row, a class of one series; each read right or refused in one line naming
the fix."""
import numpy as np
import pytest

from xformer.config import ConfigError
from xformer.data.registry import build_data
from xformer.data.series_classification import read_windows


def waves(n=12, length=16, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.array([1, 2] * (n // 2))
    x = np.sin(np.arange(length)[None] * np.where(labels == 1, 0.3, 0.9)[:, None] + rng.uniform(0, 6, (n, 1)))
    return x, labels


def test_space_separated_txt_reads_as_the_tsv_of_the_same_data(tmp_path):
    x, labels = waves()
    (tmp_path / "a.tsv").write_text("".join("\t".join([str(k)] + [f"{v:.6f}" for v in row]) + "\n"
                                            for k, row in zip(labels, x)))
    (tmp_path / "a.txt").write_text("".join("  " + "  ".join([f"{k:.7e}"] + [f"{v:.7e}" for v in row]) + "\n"
                                            for k, row in zip(labels, x)))
    x_tsv, y_tsv = read_windows(tmp_path / "a.tsv")
    x_txt, y_txt = read_windows(tmp_path / "a.txt")
    np.testing.assert_allclose(x_txt, x_tsv, atol=1e-6)
    assert y_txt.tolist() == y_tsv.tolist() == [str(k) for k in labels]  # 1.0000000e+00 is class "1"
    bundle = build_data("series_classification", {"path": str(tmp_path / "a.txt"),
                                                  "test_path": str(tmp_path / "a.tsv"), "val_fraction": 0})
    assert bundle.model_args == {"tokenizer": {"n_channels": 1, "input_len": 16}, "head": {"n_classes": 2}}


def test_unequal_lengths_in_any_row_order(tmp_path):
    (tmp_path / "short_first.tsv").write_text("1\t0.1\t0.2\n2\t0.5\t0.7\t0.9\n")
    with pytest.raises(ConfigError, match="1 of 2 series have missing"):
        read_windows(tmp_path / "short_first.tsv")
    x, y = read_windows(tmp_path / "short_first.tsv", missing="ffill")
    np.testing.assert_allclose(x[:, :, 0], [[0.1, 0.2, 0.2], [0.5, 0.7, 0.9]])
    (tmp_path / "hole.tsv").write_text("1\t0.1\t?\t0.3\n2\tNaN\tNaN\tNaN\n")
    with pytest.raises(ConfigError, match="series 2 .* hold no value at all"):
        read_windows(tmp_path / "hole.tsv", missing="ffill")


@pytest.mark.parametrize("content, words", [
    ("label,t0,t1,t2\n1,0.1,0.2,0.3\n2,0.4,0.5,0.6\n", "looks like a header"),
    ("\t0.1\t0.2\n1\t0.3\t0.4\n", "line 1 has no label"),
])
def test_malformed_ucr_files_are_one_line(tmp_path, content, words):
    (tmp_path / "f.csv").write_text(content)
    with pytest.raises(ConfigError, match=words):
        read_windows(tmp_path / "f.csv")


def test_one_class_and_a_class_of_one_series_are_refused(tmp_path):
    x, labels = waves(n=10)
    (tmp_path / "one.tsv").write_text("".join("\t".join(["7"] + [f"{v:.4f}" for v in row]) + "\n" for row in x))
    with pytest.raises(ConfigError, match="every series has the label '7'"):
        build_data("series_classification", {"path": str(tmp_path / "one.tsv")})
    rows = [("a" if i < 9 else "rare", row) for i, row in enumerate(x)]
    (tmp_path / "rare.tsv").write_text("".join("\t".join([k] + [f"{v:.4f}" for v in row]) + "\n" for k, row in rows))
    with pytest.raises(ConfigError, match=r"the classes \['rare'\] have one series each; give the data set's own test"):
        build_data("series_classification", {"path": str(tmp_path / "rare.tsv")})
    with pytest.raises(ConfigError, match=r"\['rare'\] have one series each; give data.args.val_fraction=0"):
        build_data("series_classification", {"path": str(tmp_path / "rare.tsv"),
                                              "test_path": str(tmp_path / "rare.tsv")})
    assert build_data("series_classification", {"path": str(tmp_path / "rare.tsv"), "val_fraction": 0,
                                                "test_path": str(tmp_path / "rare.tsv")}).val is None


def test_npz_layouts_and_object_labels(tmp_path):
    rng = np.random.default_rng(0)
    ncl = rng.normal(size=(20, 10, 64))  # 10 channels of 64 steps, as aeon stores them
    y = np.repeat(["a", "b"], 10)
    np.savez(tmp_path / "ncl.npz", X=ncl, y=y)
    with pytest.raises(ConfigError, match=r"aeon, sktime and tsai store \(N, C, L\): give data.args.layout=ncl"):
        build_data("series_classification", {"path": str(tmp_path / "ncl.npz")})
    bundle = build_data("series_classification", {"path": str(tmp_path / "ncl.npz"), "layout": "ncl"})
    assert bundle.model_args["tokenizer"] == {"n_channels": 10, "input_len": 64}
    x, _ = read_windows(tmp_path / "ncl.npz", layout="ncl")
    np.testing.assert_array_equal(x, ncl.transpose(0, 2, 1))
    assert read_windows(tmp_path / "ncl.npz", layout="nlc")[0].shape == (20, 10, 64)  # asked for: as stored
    np.savez(tmp_path / "objects.npz", X=ncl.transpose(0, 2, 1), y=y.astype(object))
    with pytest.raises(ConfigError, match=r"y is an object array.*y=y.astype\(str\)"):
        read_windows(tmp_path / "objects.npz")
    with pytest.raises(ConfigError, match="give nlc .* or ncl"):
        read_windows(tmp_path / "ncl.npz", layout="NCL")


@pytest.mark.parametrize("baseline, data", [({"name": "dlinear", "args": {"horizon": 4}}, "series_classification"),
                                            ({"name": "cnn"}, "series_classification"),
                                            ({"name": "lstm_lm"}, "digits")])
def test_a_baseline_of_another_domain_is_one_line(baseline, data, tmp_path, capsys):
    """Before: the hints led to training, which crashed with KeyError tracebacks (loss_weight, images)."""
    import yaml

    from xformer.cli import main

    (tmp_path / "r.yaml").write_text(yaml.safe_dump({"model": {"baseline": baseline}, "data": {"name": data},
                                                     "train": {"steps": 1, "batch_size": 8}}))
    assert main(["train", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"baseline '{baseline['name']}' is not made for this data" in err and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


def test_a_test_file_of_shorter_unequal_series_is_filled_to_the_training_length(tmp_path):
    (tmp_path / "train.tsv").write_text("1\t0.1\t0.2\t0.3\t0.4\n2\t0.5\t0.7\n1\t0.1\t0.2\n2\t0.9\t0.8\t0.7\n" * 3)
    (tmp_path / "test.tsv").write_text("1\t0.1\t0.2\n2\t0.5\t0.6\t0.7\n")  # its longest series: 3 steps, not 4
    bundle = build_data("series_classification", {"path": str(tmp_path / "train.tsv"), "missing": "ffill",
                                                  "test_path": str(tmp_path / "test.tsv"), "val_fraction": 0})
    assert bundle.test.x.shape == (2, 4, 1)
    raw = bundle.test.x[:, :, 0]  # standardised; the last step repeats the one before, as ffill fills
    assert torch_equal(raw[0, 1:], raw[0, 1].repeat(3)) and torch_equal(raw[1, 2:], raw[1, 2].repeat(2))


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_ts_files_of_sktime_and_aeon(tmp_path):
    """The UEA/UCR archives' .ts format: header, ':' between channels, ',' between values, '?' missing, the label
    last; the same series as an .npz (N, L, C) give the same windows and labels."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 5, 2)).round(4)
    labels = ["up", "down"] * 4
    lines = [":".join(",".join(f"{v}" for v in x[i, :, c]) for c in range(2)) + f":{labels[i]}" for i in range(8)]
    header = "# made by hand\n@problemName Toy\n@timeStamps false\n@univariate false\n@classLabel true up down\n@data\n"
    (tmp_path / "toy.ts").write_text(header + "\n".join(lines) + "\n")
    got, y = read_windows(tmp_path / "toy.ts")
    np.testing.assert_allclose(got, x)
    assert y.tolist() == labels
    ragged = header + "1,2,3:4,5:up\n1,?,3,4:5,6,7,8:down\n"  # unequal lengths and a missing value
    (tmp_path / "ragged.ts").write_text(ragged)
    with pytest.raises(ConfigError, match="2 of 2 series have missing"):
        read_windows(tmp_path / "ragged.ts")
    filled, _ = read_windows(tmp_path / "ragged.ts", missing="ffill")
    np.testing.assert_allclose(filled[0, :, 1], [4, 5, 5, 5])
    np.testing.assert_allclose(filled[1, :, 0], [1, 1, 3, 4])
    (tmp_path / "nolabels.ts").write_text(header.replace("@classLabel true up down", "@classLabel false")
                                          + "1,2:3,4\n")
    with pytest.raises(ConfigError, match=r"no class labels \(@classLabel false\)"):
        read_windows(tmp_path / "nolabels.ts")
    (tmp_path / "stamps.ts").write_text(header.replace("@timeStamps false", "@timeStamps true") + "(0,1),(1,2):up\n")
    with pytest.raises(ConfigError, match="@timeStamps true"):
        read_windows(tmp_path / "stamps.ts")
