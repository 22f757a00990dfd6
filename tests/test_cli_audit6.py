"""Audit 16 (c): bad input across the CLI. Each test names the audit's item it covers.

A refused command ends in one line (exit status 2) naming the problem and the fix; users' folders are never
deleted or mixed with outputs unasked: a copy left aside by an interrupted --overwrite, a run inside another run,
a run's tokenizer, an image_folder run's data; a refused compare leaves nothing behind.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from xformer.cli import main
from xformer.config import ConfigError, from_dict
from xformer.folders import OutputFolder, not_a_run_folder, output_file

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")


def error_line(capsys, argv: list[str]) -> str:
    """Run the CLI; its stderr must be exactly one ``xformer: error:`` line, with exit status 2."""
    assert main(argv) == 2, capsys.readouterr().err
    err = capsys.readouterr().err
    assert err.startswith("xformer: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def fake_run(path: Path, data: dict | None = None, tokenizer: str = "image_patches") -> Path:
    """A folder that looks like a trained run: config.yaml and checkpoints/ (what the folder checks read)."""
    (path / "checkpoints").mkdir(parents=True)
    config = {"model": {"tokenizer": {"name": tokenizer}, "head": {"name": "classification"}},
              "data": data or {"name": "digits", "args": {}}}
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    (path / "checkpoints" / "latest.json").write_text("{}")
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---- item 3: a killed --overwrite left the only complete copy aside ------------------------------------------
def test_a_copy_left_aside_by_a_killed_overwrite_is_never_deleted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    old = fake_run(Path("r/.ow.replaced"))  # the complete old run, moved aside by the killed --overwrite
    Path("r/ow").mkdir()
    Path("r/ow/config.yaml").write_text(old.joinpath("config.yaml").read_text())  # the half-written new one
    before = snapshot(tmp_path)
    for overwrite in (True, False):
        with pytest.raises(ConfigError, match=r"r/\.ow\.replaced .*interrupted --overwrite.*rm -r r/ow && mv "
                                              r"r/\.ow\.replaced r/ow") as e:
            OutputFolder("r/ow", overwrite, "run", marker="config.yaml").replace()
        assert "\n" not in str(e.value)
    assert snapshot(tmp_path) == before
    # the run folder's checks name the copy too (evaluate, predict, export, --resume of a folder that is gone)
    os.rename("r/ow", "r/gone")
    assert "mv r/.ow.replaced r/ow" in not_a_run_folder("r/ow")


# ---- item 4: runs inside runs --------------------------------------------------------------------------------
def test_no_output_folder_inside_a_run_and_no_overwrite_of_a_folder_holding_another_run(tmp_path, capsys):
    outer = fake_run(tmp_path / "outer")
    with pytest.raises(ConfigError, match="inside the run folder"):
        OutputFolder(outer / "inner", what="run", marker="config.yaml")
    with pytest.raises(ConfigError, match="inside the run folder"):
        OutputFolder(outer / "checkpoints" / "x" / "y", what="export", marker="export.json")
    before = snapshot(tmp_path)
    err = error_line(capsys, ["export", str(outer), "--format", "onnx", "--out", str(outer / "exp")])
    assert "inside the run folder" in err and snapshot(tmp_path) == before

    holder = tmp_path / "holder"
    fake_run(holder / "some" / "inner")
    (holder / "config.yaml").write_text("model: {}\n")
    with pytest.raises(ConfigError, match=r"--overwrite would delete the run folder .*inner"):
        OutputFolder(holder, overwrite=True, what="run", marker="config.yaml")
    (holder / "compare.json").write_text("{}")  # a report's own runs go with it
    OutputFolder(holder, overwrite=True, what="report", marker="compare.json", holds_runs=True)
    assert (holder / "some" / "inner" / "config.yaml").is_file()


# ---- item 5: xformer tokenizer train -------------------------------------------------------------------------
def test_tokenizer_train_replaces_only_with_overwrite_whole_and_never_a_runs(tmp_path, capsys):
    text = tmp_path / "a.txt"
    text.write_text("the cat sat on the mat. the dog sat on the log.\n" * 20)
    out = tmp_path / "tok"
    wordpiece = ["tokenizer", "train", str(text), "--vocab-size", "40", "--min-frequency", "1", "--out", str(out)]
    assert main(wordpiece) == 0
    capsys.readouterr()
    before = snapshot(out)
    assert "--overwrite" in error_line(capsys, ["tokenizer", "train", str(text), "--char", "--out", str(out)])
    assert snapshot(out) == before
    held = open(out / "xformer_tokenizer.json", "rb")  # the file as it was: a save writes new files, never into it
    try:
        assert main(["tokenizer", "train", str(text), "--char", "--out", str(out), "--overwrite"]) == 0
        assert held.read() == before["xformer_tokenizer.json"]
    finally:
        held.close()
    assert sorted(p.name for p in out.iterdir()) == ["xformer_tokenizer.json"]  # the WordPiece files went with it
    assert json.loads((out / "xformer_tokenizer.json").read_text())["kind"] == "char"
    assert not list(tmp_path.glob(".tok.replaced"))

    run = fake_run(tmp_path / "run", tokenizer="text")
    (run / "tokenizer").mkdir()
    (run / "tokenizer" / "xformer_tokenizer.json").write_text('{"kind": "char", "specials": [], "chars": ["a"]}')
    before = snapshot(run)
    assert "inside the run folder" in error_line(capsys, [*wordpiece[:-1], str(run / "tokenizer"), "--overwrite"])
    assert snapshot(run) == before
    assert "--min-frequency" in error_line(capsys, [*wordpiece[:6], "-1", "--out", str(tmp_path / "t2")])
    (tmp_path / "no_text").mkdir()
    assert "holds no .txt files" in error_line(capsys, ["tokenizer", "train", str(tmp_path / "no_text"), "--char",
                                                        "--out", str(tmp_path / "t3")])
    assert not (tmp_path / "t2").exists() and not (tmp_path / "t3").exists()


# ---- item 6: outputs inside an image_folder run's data -------------------------------------------------------
def test_outputs_never_go_into_an_image_folder_runs_data(tmp_path, capsys):
    from xformer.folders import check_outside_data

    root = tmp_path / "imgs"
    (root / "test" / "a").mkdir(parents=True)
    run = fake_run(tmp_path / "run", data={"name": "image_folder", "args": {"root": str(root)}})
    for inside in (root / "test" / "a" / "att.png", root / "test" / "exp", root):
        with pytest.raises(ConfigError, match="inside data.args.root"):
            check_outside_data(inside, "--out", [run])
    check_outside_data(tmp_path / "att.png", "--out", [run])
    csv_run = fake_run(tmp_path / "csv_run", data={"name": "csv_series", "args": {"path": str(tmp_path / "s.csv")}})
    check_outside_data(tmp_path / "f.png", "--out", [csv_run])  # a data file's folder is no data root
    err = error_line(capsys, ["attention", str(run), "--out", str(root / "test" / "a" / "att.png")])
    assert "data.args.root" in err and not (root / "test" / "a" / "att.png").exists()
    # a new output file inside a folder the command reads is refused too, not only an existing one
    with pytest.raises(ConfigError, match="a folder the command reads"):
        output_file(root / "test" / "preds.csv", "--out", inputs=[root / "test"])


# ---- item 7: tracebacks where a one-line error is due --------------------------------------------------------
def test_a_recipe_horizon_or_window_other_than_the_datas_is_one_line(tmp_path, capsys):
    from xformer.data.series_args import check_window_args
    from xformer.models import ModelConfig, PartConfig

    implied = {"tokenizer": {"n_channels": 7, "input_len": 48}, "head": {"horizon": 12}}
    for model, pattern in [(ModelConfig(head=PartConfig("forecast", {"horizon": 24})), r"data.args.horizon=24"),
                           (ModelConfig(tokenizer=PartConfig("series_patches", {"input_len": 96})),
                            r"data.args.input_len=96"),
                           (ModelConfig(tokenizer=PartConfig("series_patches", {"n_channels": 3})), r"columns"),
                           (ModelConfig(baseline=PartConfig("dlinear", {"horizon": 24})),
                            r"model.baseline.args.horizon is 24.*data.args.horizon=24")]:
        with pytest.raises(ConfigError, match=pattern):
            check_window_args(model, implied, "ett")
    check_window_args(ModelConfig(head=PartConfig("forecast", {"horizon": 12})), implied, "ett")


def test_a_series_classifier_recipes_channels_other_than_the_datas_are_said_as_channels(tmp_path, capsys):
    # a classifier's windows are series of C channels each, not C forecast columns
    message = error_line(capsys, ["train", str(Path(__file__).resolve().parents[1] / "tasks" / "patchtst_classify.yaml"),
                                  "model.tokenizer.args.n_channels=3",
                                  "train.steps=2", "--out", str(tmp_path / "run")])
    assert "model.tokenizer.args.n_channels is 3" in message and "windows have 1 channel(s)" in message
    assert "remove model.tokenizer.args.n_channels from the recipe" in message and "columns" not in message
    assert not (tmp_path / "run").exists()


def test_a_horizon_other_than_the_datas_met_at_the_first_batch_is_one_line(tmp_path, capsys):
    recipe = Path(__file__).resolve().parents[1] / "tasks" / "patchtst_etth1_96.yaml"
    argv = ["train", str(recipe), "--out", str(tmp_path / "run"), "data.name=csv_series", "data.args={input_len: 16, "
            "horizon: 4}", "model.core.d_model=8", "model.core.n_layers=1", "model.core.d_ff=16",
            "train.epochs=null", "train.steps=1", "train.batch_size=4", "train.eval_batch_size=4", "train.eval_every=1",
            "model.tokenizer.args.patch_len=8", "model.tokenizer.args.stride=8", "model.head.args.horizon=6"]
    assert "data.args.horizon" in error_line(capsys, argv)
    assert not (tmp_path / "run").exists()


def test_bad_model_arguments_are_refused_when_the_model_is_built():
    from xformer.core import CoreConfig
    from xformer.models import ModelConfig, PartConfig, build_model

    core = {"d_model": 8, "n_layers": 1, "n_heads": 2, "d_ff": 16}
    series = PartConfig("series_patches", {"n_channels": 2, "input_len": 32, "patch_len": 8, "stride": 8,
                                           "padding": "middle"})
    with pytest.raises(ConfigError, match="unknown padding 'middle'"):  # not at the first batch
        build_model(ModelConfig("encoder", CoreConfig(**core), series, PartConfig("forecast", {"horizon": 4})))
    for scale in (1e40, 0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ConfigError, match=r"model.core: layer_scale must be a number in \(0, 3.4e38\]"):
            from_dict(ModelConfig, {"core": {**core, "layer_scale": scale}}, "model")
    assert from_dict(ModelConfig, {"core": {**core, "layer_scale": 1e-5}}).core.layer_scale == 1e-5
    conv = PartConfig("image_conv", {"image_size": 8, "channels": 1})
    for args, pattern in [({"pairs": 100_000_000}, r"pairs must be at most 1024"),
                          ({"weight": "abc"}, r"model.head.args.weight must be >= 0 and finite.*'abc'"),
                          ({"weight": True}, r"weight must be >= 0 and finite")]:
        head = PartConfig("classification_drloc", {"n_classes": 3, **args})
        with pytest.raises(ConfigError, match=pattern):
            build_model(ModelConfig("encoder", CoreConfig(**core), conv, head))
    hybrid = PartConfig("image_hybrid", {"image_size": 8, "channels": 1, "class_token": "maybe"})
    with pytest.raises(ConfigError, match=r"model.tokenizer.args.class_token must be true or false, got 'maybe'"):
        build_model(ModelConfig("encoder", CoreConfig(**core), hybrid, PartConfig("classification", {"n_classes": 3})))
    with pytest.raises(ConfigError, match=r"model.head.args.quantiles must be a list.*got 0.5"):
        build_model(ModelConfig("encoder", CoreConfig(**core), PartConfig("series_patches", {**series.args,
                    "padding": "end"}), PartConfig("forecast", {"horizon": 4, "quantiles": 0.5})))


def test_generate_refuses_a_nan_temperature_and_a_seed_torch_cannot_take(tmp_path, capsys):
    from xformer.generation.decoding import generate

    missing = str(tmp_path / "no_run")  # the options are checked before the run is read
    assert "--temperature" in error_line(capsys, ["generate", missing, "--temperature", "nan"])
    assert "--seed" in error_line(capsys, ["generate", missing, "--seed", "99999999999999999999"])
    assert "--length-penalty" in error_line(capsys, ["generate", missing, "--length-penalty", "nan"])
    with pytest.raises(ValueError, match="finite temperature"):
        generate(None, torch.zeros(1, 1, dtype=torch.long), max_new_tokens=1, do_sample=True, temperature=math.nan)


# ---- item 10: a refused compare leaves nothing behind --------------------------------------------------------
def test_a_refused_compare_writes_nothing_and_the_fixed_command_runs(tmp_path, capsys, monkeypatch):
    csv = tmp_path / "s.csv"
    t = np.arange(400)
    pd.DataFrame({"date": pd.date_range("2021-01-01", periods=400, freq="h"),
                  "y": np.sin(2 * np.pi * t / 24)}).to_csv(csv, index=False)
    out = tmp_path / "cmp"
    base = ["compare", "--quiet", "--domains", "series", "--steps", "1", "--d-model", "8", "--layers", "1",
            "--heads", "2", "--batch-size", "8", "--series-data", str(csv), "--input-len", "16", "--out", str(out)]
    assert "--horizon 100000" in error_line(capsys, [*base, "--horizon", "100000"])
    assert not out.exists()
    assert "--seconds" in error_line(capsys, [*base, "--horizon", "4", "--seconds", "nan"])
    assert "--budget-seconds" in error_line(capsys, [*base, "--horizon", "4", "--budget-seconds", "nan"])
    assert not out.exists()

    import xformer.train.run as train_run_module

    def refused(*args, **kwargs):  # a mistake met part way, once compare.json is written
        raise ConfigError("refused part way")

    monkeypatch.setattr(train_run_module, "train_run", refused)
    assert "refused part way" in error_line(capsys, [*base, "--horizon", "4"])
    assert not out.exists()  # no finished run to resume: nothing kept, the command simply runs again
    monkeypatch.undo()
    assert main([*base, "--horizon", "4"]) == 0
    assert (out / "results.json").is_file()


# ---- item 12: numbers in exponent form are numbers in model and data arguments too ----------------------------
def test_exponent_numbers_are_numbers_in_data_and_model_arguments():
    from xformer.train.config import ExperimentConfig, apply_overrides

    recipe = apply_overrides({"data": {"name": "digits", "args": {"val_fraction": "1e-1"}}},
                             ["data.args.mixup=2e-1", "data.args.random_erasing=2E-1", "model.head.name=forecast",
                              "model.head.args.x=[1e-1, abc]", "model.tokenizer.name=series_patches",
                              "model.tokenizer.args.y=5e2", "train.lr=2e-1", "train.steps=1", "data.args.name=2e1x"])
    config = from_dict(ExperimentConfig, recipe)
    assert config.data.args == {"val_fraction": 0.1, "mixup": 0.2, "random_erasing": 0.2, "name": "2e1x"}
    assert config.model.head.args["x"] == [0.1, "abc"] and config.model.tokenizer.args["y"] == 500.0
    assert config.train.lr == 0.2


# ---- item 13: messages that name the key and the fix ---------------------------------------------------------
def test_repeated_series_columns_are_named():
    from xformer.data.series import read_raw_series

    frame = pd.DataFrame({"date": pd.date_range("2021-01-01", periods=5, freq="h"), "OT": np.arange(5.0)})
    with pytest.raises(ConfigError, match=r"columns=\['OT', 'OT'\] names a column more than once"):
        read_raw_series(frame, "date", ["OT", "OT"])


def test_export_and_predict_never_write_into_an_image_folder_runs_data(tmp_path, capsys):
    root = tmp_path / "imgs"
    (root / "test" / "a").mkdir(parents=True)
    run = fake_run(tmp_path / "run", data={"name": "image_folder", "args": {"root": str(root)}})
    err = error_line(capsys, ["export", str(run), "--format", "onnx", "--out", str(root / "test" / "exp")])
    assert "data.args.root" in err and not (root / "test" / "exp").exists()
    image = tmp_path / "x.png"
    image.write_bytes(b"")
    err = error_line(capsys, ["predict", str(run), str(image), "--out", str(root / "test" / "a" / "preds.csv")])
    assert "data.args.root" in err and not (root / "test" / "a" / "preds.csv").exists()


@pytest.mark.parametrize("seed", [-1, 2 ** 32, 1.5])
def test_a_val_seed_sklearn_cannot_take_is_one_line(seed):
    from xformer.data.images import _split
    with pytest.raises(ConfigError, match="data.args.val_seed must be a whole number"):
        _split([0, 1] * 10, 0.2, seed)
