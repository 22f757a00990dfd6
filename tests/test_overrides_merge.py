"""Overrides of a mapping merge into the recipe's mapping, as Hydra's do; ``~a.b`` removes a key.

Before, ``model.tokenizer.args={patch_size: 4}`` replaced the whole ``args`` mapping, so the recipe's other
tokenizer arguments (class token, positions, ...) fell back to their defaults without a word, and a run trained
with settings nobody chose.
"""
import pytest

from xformer.cli import main
from xformer.config import ConfigError, apply_overrides
from xformer.train.config import load_experiment

RECIPE = "tasks/vit_digits.yaml"


def test_a_mapping_merges_into_the_recipes_mapping():
    recipe = {"model": {"tokenizer": {"name": "image_patches",
                                      "args": {"patch_size": 2, "class_token": True, "positions": "learned"}}},
              "train": {"ema": {"enabled": False, "decay": 0.998}}}
    out = apply_overrides(recipe, ["model.tokenizer.args={patch_size: 4, shifted_patches: true}",
                                   "train.ema={enabled: true}"])
    assert out["model"]["tokenizer"]["args"] == {"patch_size": 4, "class_token": True, "positions": "learned",
                                                 "shifted_patches": True}
    assert out["train"]["ema"] == {"enabled": True, "decay": 0.998}
    # merged key by key at every depth; a list or a scalar still replaces
    out = apply_overrides(out, ["model={tokenizer: {args: {positions: none}}}", "train.betas=[0.9, 0.95]"])
    assert out["model"]["tokenizer"] == {"name": "image_patches", "args": {
        "patch_size": 4, "class_token": True, "positions": "none", "shifted_patches": True}}
    assert out["train"]["betas"] == [0.9, 0.95]


def test_a_component_given_with_its_name_replaces_the_recipes():
    recipe = {"data": {"name": "text_lm", "args": {"files": "a.txt", "tokenizer": "char", "block_size": 64}},
              "model": {"tokenizer": {"name": "image_patches", "args": {"patch_size": 2, "class_token": True}}}}
    out = apply_overrides(recipe, ["data.args={path: data/shakespeare_char, block_size: 32}", "data.name=token_file",
                                   "model.tokenizer={name: image_conv, args: {n_conv_layers: 2}}"])
    assert out["data"] == {"name": "token_file", "args": {"path": "data/shakespeare_char", "block_size": 32}}
    assert out["model"]["tokenizer"] == {"name": "image_conv", "args": {"n_conv_layers": 2}}
    # one key at a time still keeps the others (ett and csv_series share their arguments)
    out = apply_overrides({"data": {"name": "ett", "args": {"path": "e.csv", "input_len": 96}}},
                          ["data.name=csv_series", "data.args.horizon=24"])
    assert out["data"] == {"name": "csv_series", "args": {"path": "e.csv", "input_len": 96, "horizon": 24}}


def test_the_recipes_settings_survive_a_section_override():
    plain = load_experiment(RECIPE)
    merged = load_experiment(RECIPE, ["model.tokenizer.args={patch_size: 4}"])
    assert merged.model.tokenizer.args == {**plain.model.tokenizer.args, "patch_size": 4}
    assert merged.data.args == load_experiment(RECIPE, ["data.args={}"]).data.args == plain.data.args


def test_tilde_removes_a_key():
    recipe = {"model": {"tokenizer": {"name": "image_patches", "args": {"patch_size": 2, "class_token": True}}}}
    out = apply_overrides(recipe, ["~model.tokenizer.args.patch_size", "model.tokenizer.name=image_conv"])
    assert out["model"]["tokenizer"] == {"name": "image_conv", "args": {"class_token": True}}
    experiment = load_experiment(RECIPE, ["~model.tokenizer.args.patch_size", "~model.tokenizer.args.register_tokens",
                                          "model.tokenizer.name=image_conv"])
    assert experiment.model.tokenizer.name == "image_conv"
    assert "patch_size" not in experiment.model.tokenizer.args


@pytest.mark.parametrize("item, words", [
    ("~model.tokenizer.args.patch_sise", "override '~model.tokenizer.args.patch_sise': the recipe has no key "
                                         "'patch_sise' under model.tokenizer.args (it has patch_size, "),
    ("~train.nothing.lr", "the recipe has no key 'nothing' under train (it has "),
    ("~model.tokenizer.args.patch_size=2", "override '~model.tokenizer.args.patch_size=2' removes a key and takes "
                                           "no value; give ~model.tokenizer.args.patch_size"),
])
def test_a_removal_of_a_key_the_recipe_lacks_is_refused(item, words):
    with pytest.raises(ConfigError) as error:
        load_experiment(RECIPE, [item])
    assert words in str(error.value)


def test_the_command_line_takes_both_forms(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", RECIPE, "--out", str(run), "--quiet", "train.steps=2", "train.eval_every=2",
            "~model.tokenizer.args.register_tokens", "model.core={n_layers: 1}", "--threads", "1"]
    assert main(argv) == 0, capsys.readouterr().err
    saved = load_experiment(run / "config.yaml")
    assert saved.model.core.n_layers == 1 and saved.model.core.d_model == 64  # the recipe's d_model kept
    assert "register_tokens" not in (run / "config.yaml").read_text().split("tokenizer:")[1].split("head:")[0]
    assert main(["train", RECIPE, "--out", str(tmp_path / "bad"), "~train.nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "xformer: error: override '~train.nope': the recipe has no key 'nope' under train (it has ")
    assert err[0].endswith("); remove one of those, or leave the override out")
    # evaluate reads a removal as an override of the run's data (refused: it keeps the run's), not as a run folder
    assert main(["evaluate", str(run), "~data.args.affine"]) == 2
    assert capsys.readouterr().err.strip() == (
        "xformer: error: '~data.args.affine': evaluate takes data.args.KEY=VALUE only (the model and its training "
        "are the run's), e.g. data.args.root=other_images")

