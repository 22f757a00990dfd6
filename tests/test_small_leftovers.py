"""Small loose ends: negative budget lists reach compare's own refusal, --classify-data's help names at most two
files, data errors said in the command's terms (a UCR file's missing values in compare's, a CSV of only a
header as "no rows"), a ViTModel's pooler named as not read, and early stopping's bad metric said once."""
import json

import pytest
import yaml

from xformer.cli import main
from xformer.config import ConfigError

TINY = ["--steps", "2", "--d-model", "8", "--layers", "1", "--heads", "2", "--batch-size", "4", "--quiet"]
SERIES_RECIPE = {
    "model": {"architecture": "encoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
              "tokenizer": {"name": "series_patches", "args": {"patch_len": 8, "stride": 4}},
              "head": {"name": "forecast"}},
    "data": {"name": "csv_series", "args": {"input_len": 24, "horizon": 8}},
    "train": {"steps": 1, "batch_size": 4}}


@pytest.mark.parametrize("argv, words", [
    (["--budget-seconds", "-1,2"], ["--budget-seconds takes distinct positive numbers of seconds", "got -1,2"]),
    (["--budgets", "-5,10"], ["--budgets takes distinct positive numbers of steps", "got -5,10"]),
    (["--budgets", "-.5"], ["--budgets takes distinct positive numbers of steps", "got '-.5'"])])
def test_a_negative_budget_list_reaches_compare_s_own_refusal(argv, words, tmp_path, cli_error):
    """argparse read "-1,2" as an option and said "expected one argument"."""
    cli_error(["compare", *TINY, *argv, "--out", tmp_path / "o"], *words)
    assert not (tmp_path / "o").exists()


def test_classify_data_help_names_one_training_and_one_test_file(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--classify-data TRAIN [TEST]" in text and "TEST ..." not in text, text


def test_a_ucr_file_with_missing_values_is_fixed_in_the_file_or_with_xformer_train(tmp_path, cli_error):
    path = tmp_path / "gaps.tsv"
    path.write_text("".join(f"{i % 2 + 1}\t1\t{'' if i == 3 else i}\t3\n" for i in range(12)))
    err = cli_error(["compare", *TINY, "--domains", "classify", "--classify-data", path, "--out", tmp_path / "o"],
                    "1 of 12 series have missing", "fill them in the file", "xformer train",
                    "data.args.missing=ffill")
    assert "pass data.args" not in err and "takes no data.args" not in err, err
    assert err.index("fill them in the file") < err.index("xformer train"), err


@pytest.mark.parametrize("header", ["date,x", "unique_id,ds,y"])
def test_a_series_csv_of_only_a_header_has_no_rows_in_compare_and_train(header, tmp_path, cli_error):
    path = tmp_path / "header.csv"
    path.write_text(header + "\n")
    err = cli_error(["compare", *TINY, "--domains", "series", "--series-data", path, "--out", tmp_path / "o"],
                    f"{path} has no rows")
    assert "holds no value" not in err and "data.args" not in err, err
    recipe = tmp_path / "series.yaml"
    recipe.write_text(yaml.safe_dump(SERIES_RECIPE))
    err = cli_error(["train", recipe, f"data.args.path={path}", "--out", tmp_path / "run"], f"{path} has no rows")
    assert "holds no value" not in err, err


def test_a_vit_model_folder_s_pooler_is_named_as_not_read(tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    from xformer.interop.pretrained import load_source

    transformers.ViTModel(transformers.ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                                 intermediate_size=32, image_size=16, patch_size=4, num_channels=1)
                          ).save_pretrained(tmp_path / "vit")
    assert load_source(f"hf:{tmp_path / 'vit'}").unread == {"pooler.dense": "pooler"}
    recipe = tmp_path / "vit.yaml"
    recipe.write_text(yaml.safe_dump({
        "model": {"architecture": "encoder", "head": {"name": "classification"}},
        "data": {"name": "digits", "args": {"image_size": 16}}, "train": {"steps": 1, "batch_size": 4}}))
    capsys.readouterr()
    assert main(["train", str(recipe), "--init-from", f"hf:{tmp_path / 'vit'}", "--out", str(tmp_path / "run"),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "not read: pooler.dense (ViTModel's pooler, which no xformer head is)" in out, out
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())


def test_an_early_stopping_metric_not_measured_is_one_message():
    from xformer.train.metrics import early_stopping_value

    assert early_stopping_value("val_accuracy", {"val_loss": 1.0, "val_accuracy": 0.5}) == 0.5
    with pytest.raises(ConfigError, match=r"^train.early_stopping.metric 'val_f1' is not measured; choose one of "
                                          r"val_loss, val_accuracy$"):
        early_stopping_value("val_f1", {"val_loss": 1.0, "val_accuracy": 0.5})
