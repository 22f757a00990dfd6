"""The image workflow as an eighth audit (a timm user's) found it: init_from onto data of other classes or
another class order, a symlink to the run's own data, a token-count guard's advice that the tokenizer then
refuses, class names that differ only in their Unicode form, and the folder-to-predictions recipe exported
to timm."""
import json
import shutil
import unicodedata
from pathlib import Path

import pytest
import torch
import yaml

from test_vision_audit_train import vit_recipe, write_images
from xformer.cli import main
from xformer.config import ConfigError, from_dict
from xformer.core import CoreConfig
from xformer.tokenizers.image import image_patches_tokenizer
from xformer.train.checkpoint import checkpoint_dir, read_eval_weights
from xformer.train.config import ExperimentConfig
from xformer.train.init_from import init_from_pretrained
from xformer.train.run import build_resolved, train_run
from xformer.train.same_data import real_data_paths, unicode_spelling

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audit8")
    write_images(tmp / "clean")
    torch.set_num_threads(1)
    train_run(from_dict(ExperimentConfig, vit_recipe(tmp / "clean")), tmp / "vit")
    return tmp, tmp / "vit"


def fine_tune(tmp, run, root):
    config = from_dict(ExperimentConfig, {**vit_recipe(root), "init_from": str(run)})
    config, model, data = build_resolved(config)
    return model, init_from_pretrained(model, config, data)


def test_init_from_reorders_the_classifier_to_this_datas_class_order(colour_run, tmp_path):
    tmp, vit = colour_run
    theirs = json.loads((vit / "classes.json").read_text())["class_names"]
    assert theirs == ["blue", "green", "red"]
    shutil.copytree(vit, tmp_path / "shuffled")  # the same classes, saved in another order
    shuffled = ["red", "blue", "green"]
    (tmp_path / "shuffled" / "classes.json").write_text(json.dumps({"class_names": shuffled}))
    model, summary = fine_tune(tmp, tmp_path / "shuffled", tmp / "clean")
    assert "head.fc rows reordered from the pre-trained run's class order to this data's" in summary, summary
    weights = read_eval_weights(checkpoint_dir(vit / "checkpoints", "best"))
    for row, name in enumerate(theirs):  # this data's class k gets the row that scored class k's name there
        torch.testing.assert_close(model.head.fc.weight[row], weights["head.fc.weight"][shuffled.index(name)])
        torch.testing.assert_close(model.head.fc.bias[row], weights["head.fc.bias"][shuffled.index(name)])
    model, summary = fine_tune(tmp, vit, tmp / "clean")  # the same order: copied as it is, without a word
    assert "head.fc" not in summary and "reordered" not in summary, summary
    torch.testing.assert_close(model.head.fc.weight, weights["head.fc.weight"])


def test_init_from_onto_other_classes_starts_the_classifier_fresh(colour_run, tmp_path):
    tmp, vit = colour_run
    shutil.copytree(tmp / "clean", tmp_path / "renamed")
    for split in ("train", "val", "test"):  # as many classes, one of another name
        (tmp_path / "renamed" / split / "blue").rename(tmp_path / "renamed" / split / "navy")
    model, summary = fine_tune(tmp, vit, tmp_path / "renamed")
    assert ("head.fc left fresh as the pre-trained run's classes ['blue', 'green', 'red'] are not this data's "
            "['green', 'navy', 'red']") in summary, summary
    assert "left fresh: head.fc;" in summary and "not used from the checkpoint: head.fc" in summary, summary
    weights = read_eval_weights(checkpoint_dir(vit / "checkpoints", "best"))
    assert not torch.equal(model.head.fc.weight, weights["head.fc.weight"])
    torch.testing.assert_close(model.tokenizer.proj.weight, weights["tokenizer.proj.weight"])  # the rest is copied


def test_a_link_to_the_runs_own_folder_is_its_own_data(tmp_path, capsys):
    write_images(tmp_path / "images", splits=(("train", 6),))  # val/ drawn from train/ by val_fraction
    torch.set_num_threads(1)
    train_run(from_dict(ExperimentConfig, vit_recipe(tmp_path / "images", val_fraction=0.25)), tmp_path / "run")
    (tmp_path / "link").symlink_to(tmp_path / "images", target_is_directory=True)
    capsys.readouterr()
    for root in (tmp_path / "images", tmp_path / "link"):  # the scored split would hold training images
        assert main(["evaluate", str(tmp_path / "run"), f"data.args.root={root}", "data.args.val_fraction=0.5"]) == 2
        err = capsys.readouterr().err
        assert "data.args.val_fraction=0.5 would split" in err and "own data" in err and err.count("\n") == 1, err
    assert real_data_paths({"root": str(tmp_path / "link"), "files": [str(tmp_path / "link" / "a")], "seed": 1}) \
        == {"root": str(tmp_path / "images"), "files": [str(tmp_path / "images" / "a")], "seed": 1}


def test_the_token_count_guard_names_a_size_its_patch_size_tiles(tmp_path):
    """97x61 has no patch size but 1 that divides both sides: the advice is a patch size and the image size it
    tiles, which the tokenizer then takes (it used to name patch_size=5 alone, which it refused)."""
    core = CoreConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32)
    with pytest.raises(ConfigError) as error:
        image_patches_tokenizer(core, image_size=[97, 61], patch_size=1)
    message = str(error.value)
    assert "use patch_size=5 with data.args.image_size=[95, 60] (<= 256 tokens; no patch size tiles 97x61)" \
        in message, message
    tokenizer = image_patches_tokenizer(core, image_size=[95, 60], patch_size=5)
    assert tokenizer.grid == (19, 12) and tokenizer._grid_for(95, 60) == (19, 12)
    with pytest.raises(ValueError, match="not divisible"):  # what the old advice led to
        image_patches_tokenizer(core, image_size=[97, 61], patch_size=5)._grid_for(97, 61)


def test_class_names_in_another_unicode_form_are_named_as_such(tmp_path, capsys):
    composed, decomposed = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    write_images(tmp_path / "images")
    for split in ("train", "val", "test"):
        (tmp_path / "images" / split / "blue").rename(tmp_path / "images" / split / composed)
    torch.set_num_threads(1)
    train_run(from_dict(ExperimentConfig, vit_recipe(tmp_path / "images")), tmp_path / "run")
    shutil.copytree(tmp_path / "images", tmp_path / "copy")
    for split in ("val", "test"):  # as a copy from macOS may spell the folder
        (tmp_path / "copy" / split / composed).rename(tmp_path / "copy" / split / decomposed)
    shutil.rmtree(tmp_path / "copy" / "train")
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "run"), f"data.args.root={tmp_path / 'copy'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert (f"it lacks the run's {[composed]} and has {[decomposed]}, which the run does not know; 'cafe\\u0301' "
            "(the run's 'caf\\xe9') differs from the run's name only in Unicode form: rename it as the run spells "
            "it") in err, err
    assert unicode_spelling(["a", composed], ["a", "b"]) == ""


def docs_flowers_recipe(root) -> dict:
    """docs/vision.md's flowers.yaml as it stands, at the tests' size: its core narrowed, its images 16x16."""
    text = (DOCS / "vision.md").read_text(encoding="utf-8")
    block = text[text.index("# flowers.yaml"):]
    recipe = yaml.safe_load(block[:block.index("```")])
    recipe["model"]["core"].update(d_model=12, n_layers=1, n_heads=2, d_ff=16)
    recipe["data"]["args"].update(root=str(root), image_size=16)
    recipe["train"].update(steps=2, batch_size=4, eval_every=2)
    return recipe


def test_the_docs_folder_recipe_exports_to_timm_and_draws_any_checkpoints_attention(colour_run, tmp_path, capsys):
    pytest.importorskip("timm")
    tmp, _ = colour_run
    torch.set_num_threads(1)
    train_run(from_dict(ExperimentConfig, docs_flowers_recipe(tmp / "clean")), tmp_path / "flowers")
    assert main(["export", str(tmp_path / "flowers"), "--format", "timm", "--out", str(tmp_path / "timm")]) == 0
    assert (tmp_path / "timm" / "model.safetensors").is_file()
    image = next((tmp / "clean" / "test" / "red").iterdir())
    for checkpoint in ("best", "last", "step_2"):
        out = tmp_path / f"attention_{checkpoint}.png"
        assert main(["attention", str(tmp_path / "flowers"), "--image", str(image), "--checkpoint", checkpoint,
                     "--out", str(out)]) == 0
        assert out.stat().st_size > 0
    capsys.readouterr()
    assert main(["attention", str(tmp_path / "flowers"), "--index", "0", "--checkpoint", "step_7"]) == 2
    err = capsys.readouterr().err
    assert "--checkpoint step_7" in err and "no such checkpoint" in err and err.count("\n") == 1, err
