"""Configs round-trip through YAML/JSON and reject mistakes with one clear line."""
import json
from pathlib import Path

import pytest
import yaml

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.config import ConfigError, from_dict, load_yaml, to_dict

TASKS = Path(__file__).resolve().parents[1] / "tasks"


def test_core_config_round_trips_through_yaml_and_json():
    cfg = CoreConfig(d_model=48, n_heads=6, n_kv_heads=2, rope=True, layer_scale=1e-5, activation="swiglu")
    assert from_dict(CoreConfig, yaml.safe_load(yaml.safe_dump(to_dict(cfg)))) == cfg
    assert from_dict(CoreConfig, json.loads(json.dumps(to_dict(cfg)))) == cfg


def test_model_config_round_trips():
    cfg = ModelConfig("encoder-decoder", CoreConfig(d_model=32), PartConfig("seq2seq_text", {"vocab_size": 9}))
    assert from_dict(ModelConfig, yaml.safe_load(yaml.safe_dump(to_dict(cfg)))) == cfg


def test_unknown_key_names_the_closest_valid_key():
    with pytest.raises(ConfigError, match=r"unknown config key 'core.n_layer'; did you mean n_layers"):
        from_dict(ModelConfig, {"core": {"n_layer": 3}})


@pytest.mark.parametrize("override, message", [
    ("train.init_from=runs/a", "unknown config key 'train.init_from'; init_from belongs at the top level (init_from)"),
    ("data.batch_size=8", "'data.batch_size'; batch_size belongs under train (train.batch_size)"),
    ("train.d_model=64", "'train.d_model'; d_model belongs under model.core (model.core.d_model)"),
    ("n_heads=2", "'n_heads'; n_heads belongs under model.core (model.core.n_heads)"),
    ("train.mode=min", "mode belongs under train.early_stopping (train.early_stopping.mode) or under train.wandb"),
    ("train.ema.decya=0.9", "'train.ema.decya'; did you mean decay?"),  # a typo, found nowhere: the close spelling
])
def test_a_key_in_the_wrong_section_names_the_section_it_belongs_to(override, message):
    """A close spelling among the section's own keys cannot tell (train.init_from suggested min_lr): the whole
    config is searched for the key."""
    from xformer.train.config import ExperimentConfig, apply_overrides

    recipe = apply_overrides(load_yaml(TASKS / "copy.yaml"), [override])
    with pytest.raises(ConfigError) as info:
        from_dict(ExperimentConfig, recipe)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("data, message", [
    ({"d_model": "wide"}, "d_model: expected int"),
    ({"norm": "groupnorm"}, "norm: 'groupnorm' is not one of"),
    ({"rope": 1}, "rope: expected bool"),
    ({"d_model": 30, "n_heads": 4}, "divisible"),
    ({"dropout": 1.5}, r"dropout must be in \[0, 1\)"),
])
def test_wrong_values_are_one_line_errors(data, message):
    with pytest.raises(ConfigError, match=message) as info:
        from_dict(CoreConfig, data)
    assert "\n" not in str(info.value)


def test_numbers_are_converted_where_yaml_is_loose():
    cfg = from_dict(CoreConfig, {"norm_eps": "1e-6", "dropout": 0})
    assert cfg.norm_eps == 1e-6 and isinstance(cfg.dropout, float)


def test_unknown_part_and_part_argument():
    with pytest.raises(ConfigError, match="unknown tokenizer 'txt'; did you mean text"):
        build_model(ModelConfig(tokenizer=PartConfig("txt")))
    with pytest.raises(ConfigError, match="unknown tokenizer.args key 'vocab'.*vocab_size"):
        build_model(ModelConfig(tokenizer=PartConfig("text", {"vocab": 10})))


def test_a_part_without_its_name_names_the_key_to_set(tmp_path):
    """An override into a part the recipe lacks (model.tokenizer.args.X) must say which key to set, not
    "__init__() missing 1 required positional argument"."""
    with pytest.raises(ConfigError) as info:
        from_dict(ModelConfig, {"tokenizer": {"args": {"padding": "end"}}}, "model")
    assert str(info.value) == ("model.tokenizer: missing name; set model.tokenizer.name=VALUE "
                               "(in the recipe or as an override)")


def test_missing_yaml_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="config file .*nope.yaml not found; give the path of a YAML file"):
        load_yaml(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="config file .* is a folder; give the path of a YAML file"):
        load_yaml(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("core: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(bad)


def test_the_data_implied_arguments_make_a_new_config():
    from xformer.models import ModelConfig, PartConfig
    from xformer.train.config import with_implied_args

    config = ModelConfig(tokenizer=PartConfig("text", {"max_positions": 8}), head=PartConfig("causal_lm"))
    implied = {"tokenizer": {"vocab_size": 13, "max_positions": 99}, "head": {"tie_weights": True}}
    resolved = with_implied_args(config, implied)
    assert resolved.tokenizer.args == {"max_positions": 8, "vocab_size": 13}  # the recipe's own value wins
    assert resolved.head.args == {"tie_weights": True}
    assert config.tokenizer.args == {"max_positions": 8} and config.head.args == {}  # the input is unchanged


def test_an_optional_choice_names_its_choices():
    """``kind: Literal['soft', 'hard'] | None`` once read "expected Literal or null", naming no choice."""
    from xformer.train.config import Distill

    with pytest.raises(ConfigError, match=r"kind: expected one of 'soft', 'hard' or null, got 'sof'") as info:
        from_dict(Distill, {"kind": "sof", "teacher": "runs/cnn"})
    assert "Literal" not in str(info.value)


def test_a_mistake_inside_an_optional_section_is_named_not_its_type():
    """model.baseline (a part or null): a key mistyped in it was 'expected PartConfig or null, got {...}', or, beside
    a transformer's model keys, 'not read by the None baseline'."""
    from xformer.train.config import ExperimentConfig, apply_overrides, load_experiment

    recipe = apply_overrides(load_yaml(TASKS / "copy.yaml"), ["~model", "model.baseline={nme: dlinear}"])
    with pytest.raises(ConfigError, match=r"unknown config key 'model.baseline.nme'; did you mean name\?"):
        from_dict(ExperimentConfig, recipe)
    with pytest.raises(ConfigError, match=r"unknown config key 'model.baseline.nme'; did you mean name\?"):
        load_experiment(TASKS / "copy.yaml", ["model.baseline.nme=dlinear"])


@pytest.mark.parametrize("argv, said", [
    (["--steps", "10"], "unrecognized arguments: --steps 10; settings are KEY=VALUE overrides, not options: "
                        "train.steps=10"),
    (["--batch-size=8"], "not options: train.batch_size=8"),
    (["--d-model", "64"], "not options: model.core.d_model=64"),
    (["--output_dir", "runs/a"], "arguments: --output_dir runs/a; the run folder is --out runs/a"),
    (["train.lr", "1e-3"], "e.g. train.lr=1e-3 (no spaces around '='"),
    (["train.steps=", "10"], "override '10' must look like key.sub=value, e.g. train.steps=10 (no spaces"),
    (["train.steps", "=", "10"], "e.g. train.steps=10 (no spaces"),
    (["--bogus", "3"], "unrecognized arguments: --bogus 3; see xformer --help"),
])
def test_a_hugging_face_users_options_and_split_overrides_name_the_override(argv, said, tmp_path, capsys):
    """`--steps 10` (Hugging Face's and timm's habit) and an override the shell split at its spaces
    (`train.steps= 10`) were refused without naming the form that works; nothing is trained."""
    from xformer.cli import main

    try:
        status = main(["train", str(TASKS / "copy.yaml"), *argv, "--out", str(tmp_path / "run"), "--quiet"])
    except SystemExit as e:  # argparse's own error (an unknown option) exits, as on the command line
        status = e.code
    assert status == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


def test_a_recipe_not_found_names_the_recipe_meant(tmp_path, monkeypatch):
    """`xformer train cct_digits` (a name, as timm's --model takes one) or a typo in the file name said only
    'not found'; the recipe of that name (the checkout's tasks/, ./tasks, the folder given) is named."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "vit_small.yaml").write_text("model: {}\n")
    with pytest.raises(ConfigError, match=r"mine/vit_smal\.yaml not found; did you mean mine/vit_small\.yaml\?$"):
        load_yaml("mine/vit_smal.yaml")
    with pytest.raises(ConfigError, match="cct_digits not found; did you mean ") as info:
        load_yaml("cct_digits")
    assert str(info.value).endswith(f"{TASKS / 'cct_digits.yaml'}?")
    with pytest.raises(ConfigError, match="nothing_like_it.yaml not found; give the path of a YAML file"):
        load_yaml("nothing_like_it.yaml")


def test_options_spelt_with_underscores_are_read_as_their_hyphenated_selves(tmp_path, capsys):
    """Hugging Face's scripts write --max_new_tokens, --output_dir: the same option here (argparse takes only the
    hyphenated spelling; before, 'unrecognized arguments: --top_k 3')."""
    from xformer.cli import _hyphenated, build_parser, main

    assert main(["generate", str(tmp_path / "no_run"), "--max_new_tokens=8", "--top_k", "3"]) == 2
    err = capsys.readouterr().err
    assert "no_run does not exist" in err and "unrecognized" not in err, err
    args, extra = build_parser().parse_known_args([_hyphenated(a) for a in
                                                   ["generate", "runs/x", "--max_new_tokens=8", "--top_k", "3"]])
    assert (args.max_new_tokens, args.top_k, extra) == (8, 3, [])
    assert _hyphenated("train.max_length=3") == "train.max_length=3"  # an override is not an option
    assert _hyphenated("--prompt=a_b") == "--prompt=a_b"  # nor a value
    assert build_parser().parse_args(["predict", "runs/x", "a.png", "--topk", "3"]).top_k == 3  # timm's spelling


def test_evaluate_is_not_told_to_override_training_settings(tmp_path, capsys):
    """evaluate takes data.args.KEY=VALUE only: `--batch-size 8` there gets no train.batch_size=8 hint."""
    from xformer.cli import main

    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(tmp_path), "--batch-size", "8"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "unrecognized arguments: --batch-size 8; see" in err and "train." not in err, err
