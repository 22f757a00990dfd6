"""The ``key=value`` pairs of ``init_from: timm:FILE#MODEL,key=value`` (audit 19 D, findings 5 to 7): a pair
that disagrees with the tensors, a value that is not YAML, a non-square file, a regularisation argument xformer
takes from the recipe instead, an unknown model name: each a one-line ConfigError (exit 2 in the CLI) that
names the key and the fix, never a traceback. The timm files are tiny ViTs written here (random weights)."""
from __future__ import annotations

import pytest
import torch
import yaml

from xformer.cli import main
from xformer.errors import ConfigError
from xformer.interop.pretrained import load_pretrained, load_source, parse_source

timm = pytest.importorskip("timm")
MODEL = "vit_tiny_patch16_224"  # 3 heads: 48 wide divides, 40 does not


def save_vit(path, **sizes) -> str:
    from safetensors.torch import save_file

    vit = timm.create_model(MODEL, pretrained=False, **{"patch_size": 2, "in_chans": 1, "embed_dim": 48, "depth": 1,
                                                        "num_classes": 10, **sizes})
    with torch.no_grad():  # timm zero-initialises the head and biases: make every weight matter
        for p in vit.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(path))
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("timm_files")
    return {"square": save_vit(root / "square.safetensors", img_size=8),  # digits' 8x8 grey images
            "rect": save_vit(root / "rect.safetensors", img_size=(8, 16)),  # 4x8 cells; no config.json beside it
            # 4x6 cells and the class token's position: 25 positions, which also read as 5x5 without it
            "rect25": save_vit(root / "rect25.safetensors", img_size=(8, 12)),
            "wide40": save_vit(root / "wide40.safetensors", img_size=8, embed_dim=40, num_heads=2),
            "root": root}


def refusal(spec: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_source(spec)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


def test_a_bracketed_list_stays_one_value(files):
    spec = f"timm:{files['rect']}#{MODEL},img_size=[8, 16],num_heads=3,global_pool=avg"
    assert parse_source(spec) == ("timm", files["rect"], MODEL, {"img_size": [8, 16], "num_heads": 3,
                                                                  "global_pool": "avg"})


@pytest.mark.parametrize("pairs", ["num_classes=10", "img_size=8", "img_size=[8,8]", "patch_size=2",
                                   "embed_dim=48,in_chans=1,depth=1"])
def test_pairs_that_agree_with_the_tensors_are_taken(files, pairs):
    pre = load_source(f"timm:{files['square']}#{MODEL},{pairs}")
    assert pre.model.tokenizer.args["image_size"] == [8, 8] and pre.model.head.args["n_classes"] == 10


@pytest.mark.parametrize("pair, words", [
    ("num_classes=4", ["num_classes=4", "10 classes",
                       "leave it out: the data gives n_classes, and a head of another size starts fresh"]),
    ("img_size=16", ["img_size=16", "the weights hold img_size=8", "data.args.image_size may differ"]),
    ("img_size=[8,12]", ["img_size=[8, 12]", "the weights hold img_size=8"]),
    ("patch_size=4", ["patch_size=4", "the weights hold patch_size=2"]),
    ("embed_dim=64", ["embed_dim=64", "the weights hold embed_dim=48"]),
    ("in_chans=3", ["in_chans=3", "the weights hold in_chans=1"]),
])
def test_a_pair_that_disagrees_with_the_tensors_is_one_line_naming_the_key(files, pair, words):
    message = refusal(f"timm:{files['square']}#{MODEL},{pair}")
    for word in words:
        assert word in message, message


def test_a_non_square_file_takes_its_size_as_a_list_and_else_says_to_give_it(files):
    pre = load_source(f"timm:{files['rect']}#{MODEL},img_size=[8,16]")
    assert pre.model.tokenizer.args["image_size"] == [8, 16]
    for spec in (f"timm:{files['rect']}#{MODEL}", f"timm:{files['rect']}#{MODEL},img_size=8"):
        message = refusal(spec)
        assert "pos_embed" in message and "32 cells" in message and "img_size=[H,W]" in message, message


def test_a_given_size_settles_positions_that_also_read_as_a_square(files):
    from safetensors.torch import load_file

    model, _ = load_pretrained(f"timm:{files['rect25']}#{MODEL},img_size=[8,12]")
    assert model.config.tokenizer.args["image_size"] == [8, 12]
    vit = timm.create_model(MODEL, pretrained=False, img_size=(8, 12), patch_size=2, in_chans=1, embed_dim=48,
                            depth=1, num_classes=10).eval()
    vit.load_state_dict(load_file(files["rect25"]))
    images = torch.randn(2, 1, 8, 12)
    with torch.no_grad():
        torch.testing.assert_close(model({"images": images})["logits"], vit(images), atol=1e-5, rtol=0)


def test_a_value_that_is_not_yaml_is_one_line_naming_the_pair(files):
    with pytest.raises(ConfigError, match=r"'img_size=\[8,12': the value is not YAML") as caught:
        parse_source(f"timm:{files['rect']}#{MODEL},img_size=[8,12")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("pair, recipe_key", [
    ("drop_rate=0.1", "model.head.args.dropout=0.1"),
    ("drop_path_rate=0.1", "model.core.drop_path=0.1"),
    ("attn_drop_rate=0.1", "model.core.attn_dropout=0.1"),
    ("proj_drop_rate=0.1", "model.core.attn_proj_dropout=0.1"),
    ("pos_drop_rate=0.1", "model.tokenizer.args.dropout=0.1"),
])
def test_a_timm_regularisation_argument_names_the_recipe_key_instead(files, pair, recipe_key):
    message = refusal(f"timm:{files['square']}#{MODEL},{pair}")
    assert pair.split("=")[0] in message and recipe_key in message, message


def test_timm_patch_dropout_is_refused_as_doing_nothing(files):
    """patch_drop_rate once reached create_model and was dropped with the rest of timm's model: silently nothing."""
    message = refusal(f"timm:{files['square']}#{MODEL},patch_drop_rate=0.5")
    assert "patch_drop_rate=0.5" in message and "no patch dropout" in message and "remove it" in message, message


def test_an_unknown_model_name_points_to_list_models_not_to_the_heads(files):
    message = refusal(f"timm:{files['square']}#vit_tinyy_patch16_224")
    assert "Unknown model" in message and "timm.list_models('vit_*')" in message, message
    assert "num_heads" not in message.partition("failed:")[2], message


def test_the_heads_hint_stays_where_the_heads_are_the_problem(files):
    message = refusal(f"timm:{files['wide40']}#{MODEL}")  # 40 wide, vit_tiny's 3 heads
    assert "#NAME,num_heads=N" in message, message
    assert load_source(f"timm:{files['wide40']}#{MODEL},num_heads=2").model.core.n_heads == 2


@pytest.mark.parametrize("pair, words", [
    ("num_classes=4", ["num_classes=4", "leave it out: the data gives n_classes"]),
    ("drop_path_rate=0.1", ["drop_path_rate", "model.core.drop_path=0.1"]),
])
def test_the_cli_refuses_in_one_line_with_exit_2(files, capsys, pair, words):
    root = files["root"]
    recipe = root / "digits.yaml"
    recipe.write_text(yaml.safe_dump({
        "model": {"architecture": "encoder", "tokenizer": {"name": "image_patches"},
                  "head": {"name": "classification"}},
        "data": {"name": "digits", "args": {"image_size": 8}},
        "train": {"steps": 1, "batch_size": 4, "eval_every": 1, "log_every": 1, "device": "cpu"}}))
    run = root / f"run_{pair.split('=')[0]}"
    argv = ["train", str(recipe), "--out", str(run), "--quiet", "--init-from", f"timm:{files['square']}#{MODEL},{pair}"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("xformer: error:") and "\n" not in err, err
    for word in words:
        assert word in err, err
    assert not run.exists()


def test_label_names_beside_the_file_put_the_classifier_rows_in_the_data_order(files, capsys):
    """A timm Hub config.json's label_names (as ``xformer export --format timm`` writes them) say which class
    each logit is: on digits (classes "0".."9") a file whose logits run 9..0 has its rows reversed."""
    import json

    from xformer.train.run import load_run_model

    root = files["root"] / "labelled"
    root.mkdir()
    weights = save_vit(root / "model.safetensors", img_size=8)
    names = [str(9 - i) for i in range(10)]
    (root / "config.json").write_text(json.dumps({"architecture": MODEL, "label_names": names,
                                                  "pretrained_cfg": {"mean": [0.5], "std": [0.25]}}))
    pre = load_source(f"timm:{weights}#{MODEL}")
    assert pre.class_names == names and pre.normalisation == {"mean": [0.5], "std": [0.25]}  # image folders take it
    recipe = root / "digits.yaml"
    recipe.write_text(yaml.safe_dump({
        "model": {"architecture": "encoder", "tokenizer": {"name": "image_patches"},
                  "head": {"name": "classification"}},
        "data": {"name": "digits", "args": {"image_size": 8}},
        "train": {"steps": 1, "batch_size": 4, "lr": 1e-9, "eval_every": 1, "log_every": 1, "device": "cpu"}}))
    run = root / "run"
    assert main(["train", str(recipe), "--out", str(run), "--quiet", "--init-from", f"timm:{weights}#{MODEL}"]) == 0
    assert "head.fc rows reordered from the checkpoint's class order" in capsys.readouterr().out
    from safetensors.torch import load_file

    theirs = load_file(weights)["head.weight"]
    torch.testing.assert_close(load_run_model(run)[1].head.fc.weight, theirs.flip(0), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name, size, old_grid", [("square", 12, [4, 4]), ("rect,img_size=[8,16]", [12, 8], [4, 8])])
def test_a_timm_file_fine_tunes_at_another_image_size_as_timm_builds_it_there(files, capsys, name, size, old_grid):
    """timm.create_model(name, img_size=SIZE) given the file with pos_embed resampled to the new grid by timm's
    resample_abs_pos_embed (what its checkpoint_filter_fn does for a square file) gives the logits of the run
    fine-tuned from the file on images of that size."""
    from safetensors.torch import load_file
    from timm.layers import resample_abs_pos_embed

    from xformer.train.run import load_run_model

    name, *pairs = name.split(",")
    root = files["root"] / f"resized_{name}"
    root.mkdir()
    recipe = root / "digits.yaml"
    recipe.write_text(yaml.safe_dump({
        "model": {"architecture": "encoder", "head": {"name": "classification"}},
        "data": {"name": "digits", "args": {"image_size": size}},
        "train": {"steps": 1, "batch_size": 4, "lr": 1e-9, "eval_every": 1, "log_every": 1, "device": "cpu"}}))
    run = root / "run"
    assert main(["train", str(recipe), "--out", str(run), "--quiet", "--init-from",
                 f"timm:{files[name]}#{','.join([MODEL, *pairs])}"]) == 0
    assert "resampled tokenizer.pos_grid" in capsys.readouterr().out
    hw = [size, size] if isinstance(size, int) else size
    vit = timm.create_model(MODEL, pretrained=False, patch_size=2, in_chans=1, embed_dim=48, depth=1, num_classes=10,
                            img_size=hw).eval()
    state = load_file(files[name])
    state["pos_embed"] = resample_abs_pos_embed(state["pos_embed"], new_size=list(vit.patch_embed.grid_size),
                                                old_size=old_grid, num_prefix_tokens=1)
    vit.load_state_dict(state)
    images = torch.randn(3, 1, *hw)
    with torch.no_grad():
        ours = load_run_model(run)[1].eval()({"images": images})["logits"]
        torch.testing.assert_close(ours, vit(images), atol=1e-4, rtol=0)
