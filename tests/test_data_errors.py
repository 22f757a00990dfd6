"""Data-layer mistakes end in one line (`xformer: error: ...`), exit status 2 and no traceback.

Each case trains a tiny recipe written to tmp_path through `xformer.cli.main`; the mistake is caught
while the data or the model is built, before any training step (a corrupt image: at its first batch).
"""
import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from xformer.cli import UserError, main
from xformer.config import ConfigError
from xformer.core.layers import Dropout
from xformer.data.images import _open
from xformer.registry import call_factory, check_factory_args

CORE = {"d_model": 8, "n_layers": 1, "n_heads": 2, "d_ff": 16}
SERIES_MODEL = {"architecture": "encoder", "core": CORE,
                "tokenizer": {"name": "series_patches", "args": {"patch_len": 4, "stride": 4}},
                "head": {"name": "forecast"}}
IMAGE_MODEL = {"architecture": "encoder", "core": CORE,
               "tokenizer": {"name": "image_patches", "args": {"patch_size": 4}},
               "head": {"name": "classification"}}
TEXT_MODEL = {"architecture": "decoder", "core": CORE, "tokenizer": {"name": "text"}, "head": {"name": "causal_lm"}}
TINY_SERIES = {"name": "csv_series", "args": {"input_len": 16, "horizon": 4}}
TINY_COPY = {"name": "copy_digits", "args": {"n_train": 8, "n_val": 4, "n_test": 4, "length": 3}}


def fails(tmp_path, capsys, model: dict, data: dict, *overrides: str) -> str:
    """Train the recipe (model, data); assert one error line, status 2, no traceback; return the line."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"model": model, "data": data,
                                      "train": {"steps": 1, "batch_size": 4, "device": "cpu"}}))
    capsys.readouterr()
    assert main(["train", str(recipe), *overrides, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xformer: error: ") and err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    return err.strip()


def series_csv(path, n_rows: int = 200, dates=None):
    dates = dates if dates is not None else pd.date_range("2020-01-01", periods=n_rows, freq="h").astype(str)
    pd.DataFrame({"date": dates, "v": np.sin(np.arange(len(dates)))}).to_csv(path, index=False)
    return path


# ---------------------------------------------------------------- unknown and missing arguments


def test_unknown_data_arg_gets_the_config_keys_did_you_mean(tmp_path, capsys):
    line = fails(tmp_path, capsys, SERIES_MODEL, {"name": "csv_series", "args": {"input_length": 16}})
    assert line.endswith("unknown data.args key 'input_length' for data 'csv_series'; did you mean input_len?")
    line = fails(tmp_path, capsys, SERIES_MODEL, {"name": "csv_series", "args": {"zzz": 1}})
    assert "unknown data.args key 'zzz' for data 'csv_series'; valid: path, date_column," in line


def test_the_shared_kwargs_check():
    def factory(core, size: int, rate: float = 0.1, name: str = "x"):
        if size < 0:
            raise ValueError(f"size must not be negative, got {size}")
        if name != "x":
            raise ConfigError("data.args.name must be x")
        return size

    with pytest.raises(ConfigError, match=r"^unknown part.args key 'sise' for part 'f'; did you mean size\?$"):
        check_factory_args(factory, {"sise": 1}, "part", "f", fixed=["core"])
    with pytest.raises(ConfigError, match=r"^unknown part.args key 'zzz' for part 'f'; valid: size, rate, name$"):
        check_factory_args(factory, {"zzz": 1}, "part", "f", fixed=["core"])
    with pytest.raises(ConfigError, match=r"^part 'f' needs part.args.size; add it to the recipe$"):
        check_factory_args(factory, {"rate": 0.5}, "part", "f", fixed=["core"])
    check_factory_args(lambda **anything: None, {"whatever": 1}, "part", "f")  # **kwargs takes every key
    assert call_factory(factory, {"size": 3}, "part", "f", core=None) == 3
    with pytest.raises(ConfigError, match=r"^part 'f': size must not be negative, got -1$"):
        call_factory(factory, {"size": -1}, "part", "f", core=None)  # a ValueError names the part
    with pytest.raises(ConfigError, match=r"^data.args.name must be x$"):
        call_factory(factory, {"size": 1, "name": "y"}, "part", "f", core=None)  # a ConfigError passes as it is


def test_a_missing_required_data_arg_is_named(tmp_path, capsys):
    line = fails(tmp_path, capsys, IMAGE_MODEL, {"name": "image_folder", "args": {}})
    assert line.endswith("data 'image_folder' needs data.args.root; add it to the recipe")


# ---------------------------------------------------------------- values out of range


@pytest.mark.parametrize("data, message", [
    ({"name": "csv_series", "args": {"horizon": 0}}, "data.args.horizon must be >= 1, got 0"),
    ({"name": "csv_series", "args": {"input_len": -5}}, "data.args.input_len must be >= 1, got -5"),
    ({"name": "csv_series", "args": {"horizon": "96"}}, "data.args.horizon must be a whole number >= 1, got '96'"),
    ({"name": "csv_series", "args": {"train_ratio": 0.9}}, "data.args.train_ratio (0.9) and test_ratio (0.2) must "
     "lie in (0, 1) and leave rows for validation; e.g. 0.7 and 0.2"),
    ({"name": "ett", "args": {"horizon": -1}}, "data.args.horizon must be >= 1, got -1"),
    ({"name": "series_classification", "args": {"val_fraction": 1.5}},
     "data.args.val_fraction must be in [0, 1), got 1.5"),
    ({"name": "series_classification", "args": {"n_per_class": 0}}, "data.args.n_per_class must be >= 1, got 0"),
    ({"name": "reverse_digits", "args": {"n_train": 0}}, "data.args.n_train must be >= 1, got 0"),
    ({"name": "reverse_digits", "args": {"n_val": -1}}, "data.args.n_val must be >= 0, got -1"),
    ({"name": "reverse_digits", "args": {"min_len": 5, "max_len": 3}},
     "data.args.max_len=3 is below data.args.min_len=5; raise max_len or lower min_len"),
    ({"name": "copy_digits", "args": {"length": 0}}, "data.args.length must be >= 1, got 0"),
    ({"name": "text_lm", "args": {"block_size": 0}}, "data.args.block_size must be >= 1, got 0"),
    ({"name": "text_mlm", "args": {"document_chars": 0}}, "data.args.document_chars must be >= 1, got 0"),
    ({"name": "text_classification", "args": {"max_length": "long"}},
     "data.args.max_length must be a whole number >= 1, got 'long'"),
    ({"name": "text_seq2seq", "args": {"min_words": 0}}, "data.args.min_words must be >= 1, got 0"),
    ({"name": "digits", "args": {"image_size": 0}}, "data.args.image_size must be >= 1, got 0"),
    ({"name": "digits", "args": {"random_erasing": 2.0}}, "data.args.random_erasing must be in [0, 1], got 2.0"),
])
def test_data_values_out_of_range(tmp_path, capsys, data, message):
    assert fails(tmp_path, capsys, SERIES_MODEL, data) == f"xformer: error: {message}"


@pytest.mark.parametrize("model, data, override, message", [
    (SERIES_MODEL, TINY_SERIES, "model.tokenizer.args.stride=0", "model.tokenizer.args.stride must be >= 1, got 0"),
    (SERIES_MODEL, TINY_SERIES, "model.tokenizer.args.patch_len=-4", "model.tokenizer.args.patch_len must be >= 1, got -4"),
    (SERIES_MODEL, TINY_SERIES, "model.tokenizer.args.dropout=1",
     "tokenizer 'series_patches': dropout must be in [0, 1), got 1"),
    (SERIES_MODEL, TINY_SERIES, "model.head.args.dropout=1.0", "head 'forecast': dropout must be in [0, 1), got 1.0"),
    (SERIES_MODEL, TINY_SERIES, "model.head.args.horizon=0", "model.head.args.horizon must be >= 1, got 0"),
    (IMAGE_MODEL, {"name": "digits"}, "model.tokenizer.args.patch_size=0",
     "model.tokenizer.args.patch_size must be >= 1, got 0"),
    (IMAGE_MODEL, {"name": "digits"}, "model.tokenizer.args.image_size=[8,0]",
     "model.tokenizer.args.image_size must be >= 1, got [8, 0]"),
    (TEXT_MODEL, TINY_COPY, "model.tokenizer.args.max_positions=-1",
     "model.tokenizer.args.max_positions must be >= 1, got -1"),
    (TEXT_MODEL, TINY_COPY, "model.tokenizer.args.vocab_size=0", "model.tokenizer.args.vocab_size must be >= 1, got 0"),
    (TEXT_MODEL, TINY_COPY, "model.tokenizer.args.pad_id=13",
     "model.tokenizer.args.pad_id must be an id in [0, 13) (the vocabulary), got 13"),
])
def test_model_part_values_out_of_range(tmp_path, capsys, model, data, override, message):
    assert fails(tmp_path, capsys, model, data, override) == f"xformer: error: {message}"


def test_dropout_of_one_is_refused_where_every_model_builds_it():
    with pytest.raises(ValueError, match=r"^dropout must be in \[0, 1\), got 1.0$"):
        Dropout(1.0)
    assert Dropout(0.0).p == 0.0


# ---------------------------------------------------------------- CSV series


def test_a_date_pandas_cannot_parse_names_file_column_row_and_value(tmp_path, capsys):
    dates = list(pd.date_range("2020-01-01", periods=60, freq="h").astype(str))
    dates[2] = "not a date"
    path = series_csv(tmp_path / "x.csv", dates=dates)
    line = fails(tmp_path, capsys, SERIES_MODEL, {"name": "csv_series", "args": {"path": str(path)}})
    assert line == (f"xformer: error: column 'date' of {path}: row 3 holds 'not a date', which is not a date; "
                    "fix the value or set date_column")


@pytest.mark.parametrize("content, problem", [
    (b"\x89PNG\r\n\x1a\n" + bytes(range(128, 256)), "is not a text CSV file (byte b'\\x89' at offset 0 is not UTF-8)"),
    (bytes(range(256)), "is not a text CSV file (it holds NUL bytes)"),
    (b"", "is empty"),
    (b"date,v\n2020-01-01,1\n2020-01-02,2,3,4\n", "cannot be read as CSV (Expected 2 fields in line 3, saw 4)"),
])
def test_a_file_that_is_not_a_readable_csv(tmp_path, capsys, content, problem):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    line = fails(tmp_path, capsys, SERIES_MODEL, {"name": "csv_series", "args": {"path": str(path)}})
    assert line.startswith(f"xformer: error: {path} {problem}; ") and "header row" in line


def test_a_series_too_short_for_the_windows_names_the_split_and_the_series_rows(tmp_path, capsys):
    path = series_csv(tmp_path / "x.csv", n_rows=200)  # ratio split: 140 train, 20 validation, 40 test rows
    line = fails(tmp_path, capsys, SERIES_MODEL, {"name": "csv_series",
                                                  "args": {"path": str(path), "input_len": 50, "horizon": 40}})
    assert line == ("xformer: error: the validation split gets 70 of the series' 200 rows, too short for "
                    "input_len=50 + horizon=40; give a longer series or a shorter input_len / horizon")


def test_series_classification_files_that_cannot_be_read(tmp_path, capsys):
    ucr = tmp_path / "train.tsv"
    ucr.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(128, 256)))
    line = fails(tmp_path, capsys, SERIES_MODEL, {"name": "series_classification", "args": {"path": str(ucr)}})
    assert line.startswith(f"xformer: error: {ucr} is not a UTF-8 text file") and "UCR-format" in line
    npz = tmp_path / "train.npz"
    npz.write_bytes(b"not a zip archive")
    line = fails(tmp_path, capsys, SERIES_MODEL, {"name": "series_classification", "args": {"path": str(npz)}})
    assert line.startswith(f"xformer: error: {npz} is not a readable .npz archive") and "numpy.savez" in line


# ---------------------------------------------------------------- image folders


def image_folder(root, bad: str | None = None, truncated: bool = False):
    """root/{train,test}/{a,b}/*.png, 8x8; ``bad`` (a path under root) replaced by a broken file."""
    for split, n in (("train", 2), ("test", 1)):
        for label in ("a", "b"):
            (root / split / label).mkdir(parents=True)
            for k in range(n):
                Image.new("RGB", (8, 8), (40 * k, 0, 200)).save(root / split / label / f"{k}.png")
    if bad is None:
        return None
    path = root / bad
    if truncated:  # noise compresses badly: cutting the end leaves the header whole and the pixels short
        noise = np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(noise).save(path)
        path.write_bytes(path.read_bytes()[:-60])
    else:
        path.write_bytes(b"these bytes are no image")
    return path


def folder_data(root) -> dict:
    return {"name": "image_folder", "args": {"root": str(root), "image_size": 8, "val_fraction": 0.0}}


def test_an_image_pil_cannot_identify_is_refused_when_the_data_is_built(tmp_path, capsys):
    bad = image_folder(tmp_path / "images", "train/b/1.png")
    line = fails(tmp_path, capsys, IMAGE_MODEL, folder_data(tmp_path / "images"))
    assert line == f"xformer: error: cannot read image {bad} (cannot identify image file); remove or replace it"


def test_an_image_that_fails_to_decode_stops_training_in_one_line(tmp_path, capsys):
    bad = image_folder(tmp_path / "images", "train/a/0.png", truncated=True)  # its header still reads
    with pytest.raises(UserError, match="cannot read image .*0.png"):
        _open(str(bad), "RGB")
    line = fails(tmp_path, capsys, IMAGE_MODEL, folder_data(tmp_path / "images"), "train.batch_size=2")
    assert line == f"xformer: error: cannot read image {bad} (image file is truncated); remove or replace it"


def test_an_empty_class_folder_and_classes_that_differ_between_splits(tmp_path, capsys):
    root = tmp_path / "images"
    image_folder(root)
    (root / "train" / "c").mkdir()
    line = fails(tmp_path, capsys, IMAGE_MODEL, folder_data(root))
    assert line.startswith(f"xformer: error: image_folder: {root / 'train'}: Found no valid file for the classes c")
    assert line.endswith("give each class folder at least one image, or remove the empty ones")
    Image.new("RGB", (8, 8)).save(root / "train" / "c" / "0.png")
    (root / "test" / "d").mkdir()
    Image.new("RGB", (8, 8)).save(root / "test" / "d" / "0.png")
    line = fails(tmp_path, capsys, IMAGE_MODEL, folder_data(root))
    assert line == (f"xformer: error: image_folder: test classes differ from train's (3): ['d'] not in train; ['c'] "
                    f"missing; give {root / 'test'} the same class folders as train (empty for a class it has no images of)")


# ---------------------------------------------------------------- text files


@pytest.mark.parametrize("content, problem", [
    (bytes(range(128, 256)) * 4, "is not UTF-8 text (invalid start byte at byte 0)"),
    (b"readable\x00but binary", "is not a text file (it holds NUL bytes)"),
])
def test_a_binary_text_file_is_named(tmp_path, capsys, content, problem):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    line = fails(tmp_path, capsys, TEXT_MODEL, {"name": "text_lm", "args": {"files": str(path)}})
    assert line.startswith(f"xformer: error: {path} {problem}")
    path = tmp_path / "labelled.csv"
    path.write_bytes(content)
    line = fails(tmp_path, capsys, TEXT_MODEL, {"name": "text_classification", "args": {"files": str(path)}})
    assert line.startswith(f"xformer: error: {path} ")
