"""Hugging Face ViT in and out: ``ViTForImageClassification`` / ``ViTModel`` folders are an encoder fed by
``image_patches`` and finished by ``classification`` (xformer/interop/hf_vit.py).

In: the logits (and a ViTModel's hidden states) equal transformers' for square and non-square images, with and
without q/k/v biases, from a folder and from a model object (transformers 5 renames the blocks in memory);
``init_from: hf:FOLDER`` fine-tunes on an image folder with the checkpoint's classifier in the data's class
order (id2label) and its image processor's mean / std, and ``xformer predict`` then gives transformers' own
probabilities on the same PNG files. Out: ``xformer export --format hf`` writes a folder that
``ViTForImageClassification`` and ``AutoImageProcessor`` load (id2label = the run's classes), whose
``pipeline("image-classification")`` agrees with ``xformer predict``. Nothing is downloaded: every model is
built here. "Before any training step": train.lr=1e-9 (two AdamW steps move each weight by about 2e-9)."""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch
import yaml

from xformer.cli import main

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

TOL = 1e-4
CLASSES = {0: "fox", 1: "cat", 2: "dog"}  # id2label against the image folder's sorted cat, dog, fox


def _vit(cls=None, **overrides):
    config = transformers.ViTConfig(**{**dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                              intermediate_size=64, image_size=16, patch_size=4, num_channels=3,
                                              id2label=CLASSES, label2id={v: k for k, v in CLASSES.items()}),
                                       **overrides})
    model = (cls or transformers.ViTForImageClassification)(config)
    with torch.no_grad():  # transformers zero-initialises biases and the class token: make every weight matter
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize("overrides", [{}, {"qkv_bias": False, "hidden_act": "gelu_new"},
                                       {"image_size": [16, 24], "patch_size": [4, 8]}])
def test_logits_match_transformers_from_a_folder_and_an_object(tmp_path, overrides):
    from xformer.interop.hf_vit import vit_config_to_xformer, vit_state_dict_to_xformer
    from xformer.interop.pretrained import load_pretrained, load_source
    from xformer.models import build_model

    torch.manual_seed(0)
    hf = _vit(**overrides)
    hf.save_pretrained(tmp_path)
    size = overrides.get("image_size", 16)
    images = torch.randn(2, 3, *(size if isinstance(size, list) else [size, size]))
    model, vocab = load_pretrained(tmp_path)
    assert vocab is None and load_source(f"hf:{tmp_path}").class_names == ["fox", "cat", "dog"]
    in_memory = build_model(vit_config_to_xformer(hf.config)).eval()
    in_memory.load_state_dict(vit_state_dict_to_xformer(hf.state_dict(), 2))
    with torch.no_grad():
        expect = hf(pixel_values=images).logits
        torch.testing.assert_close(model({"images": images})["logits"], expect, atol=TOL, rtol=0)
        torch.testing.assert_close(in_memory({"images": images})["logits"], expect, atol=TOL, rtol=0)


def test_a_vit_model_gives_transformers_hidden_states_and_exports_back(tmp_path):
    from xformer.interop.hf_vit import save_vit
    from xformer.interop.pretrained import load_pretrained

    torch.manual_seed(0)
    bare = _vit(transformers.ViTModel)  # no classifier; its pooler is not read
    bare.save_pretrained(tmp_path / "bare")
    model, _ = load_pretrained(tmp_path / "bare")
    images = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        ours = model.run_core(model.tokenizer({"images": images}))
        torch.testing.assert_close(ours, bare(pixel_values=images).last_hidden_state, atol=TOL, rtol=0)

    classifier = _vit()
    classifier.save_pretrained(tmp_path / "classifier")
    model, _ = load_pretrained(tmp_path / "classifier")
    save_vit(model, tmp_path / "back", {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}, id2label=CLASSES)
    back = transformers.ViTForImageClassification.from_pretrained(tmp_path / "back").eval()
    with torch.no_grad():
        torch.testing.assert_close(back(pixel_values=images).logits, classifier(pixel_values=images).logits,
                                   atol=TOL, rtol=0)
    processor = transformers.AutoImageProcessor.from_pretrained(tmp_path / "back")
    assert list(processor.image_std) == [0.25] * 3 and processor.size["height"] == 16


def _png_folder(root, size=(16, 16)):
    """train/ and val/ of three classes told apart by colour, plus loose PNGs to predict."""
    from PIL import Image

    rng = np.random.default_rng(0)
    colours = {"cat": (200, 40, 40), "dog": (40, 200, 40), "fox": (40, 40, 200)}
    for split, count in (("train", 6), ("val", 2)):
        for name, colour in colours.items():
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(np.array(colour) + rng.normal(0, 30, (*size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    (root / "new").mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / "new" / f"{i}.png")


def _predicted(capsys, argv) -> list[dict]:
    assert main(argv) == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def test_an_image_folder_fine_tunes_from_a_vit_folder_predicts_and_exports(tmp_path, capsys):
    from PIL import Image

    torch.manual_seed(0)
    hf = _vit()
    hf.save_pretrained(tmp_path / "vit")
    transformers.ViTImageProcessor(size={"height": 16, "width": 16}).save_pretrained(tmp_path / "vit")
    _png_folder(tmp_path / "images")
    recipe = tmp_path / "vit.yaml"
    recipe.write_text(yaml.safe_dump({
        "init_from": f"hf:{tmp_path / 'vit'}",
        "model": {"architecture": "encoder", "head": {"name": "classification"}},
        "data": {"name": "image_folder", "args": {"root": str(tmp_path / "images"), "image_size": 16}},
        "train": {"steps": 2, "batch_size": 4, "lr": 1e-9, "warmup_steps": 0, "eval_every": 2, "log_every": 1}}))
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "left fresh: none" in out and "head.fc rows reordered from the checkpoint's class order" in out, out
    assert "images normalised as it was trained (mean [0.5, 0.5, 0.5]" in out, out
    assert json.loads((run / "preprocess.json").read_text())["mean"] == [0.5, 0.5, 0.5]

    # xformer predict = transformers' processor and model on the same files (16x16: no resize), classes by name
    files = sorted((tmp_path / "images" / "new").glob("*.png"))
    rows = _predicted(capsys, ["predict", str(run), str(tmp_path / "images" / "new"), "--top-k", "3"])
    processor = transformers.AutoImageProcessor.from_pretrained(tmp_path / "vit")
    with torch.no_grad():
        probs = hf(**processor([Image.open(f).convert("RGB") for f in files], return_tensors="pt")).logits.softmax(-1)
    for row, p in zip(sorted(rows, key=lambda r: r["file"]), probs):
        for k in (1, 2, 3):
            theirs = p[hf.config.label2id[row[f"class_{k}"]]].item()
            assert float(row[f"probability_{k}"]) == pytest.approx(theirs, abs=1e-4)

    # the folder itself, with no run: the same probabilities under id2label's names
    direct = _predicted(capsys, ["predict", str(tmp_path / "vit"), str(tmp_path / "images" / "new"), "--top-k", "3"])
    for row, p in zip(sorted(direct, key=lambda r: r["file"]), probs):
        assert float(row["probability_1"]) == pytest.approx(p.max().item(), abs=1e-4)
        assert row["class_1"] == CLASSES[int(p.argmax())]

    # and back: a ViTForImageClassification named by the run's classes, with the run's image processor
    exported = tmp_path / "exported"
    assert main(["export", str(run), "--format", "hf", "--out", str(exported)]) == 0
    assert json.loads(capsys.readouterr().out)["class"] == "ViTForImageClassification"
    back = transformers.ViTForImageClassification.from_pretrained(exported).eval()
    assert back.config.id2label == {0: "cat", 1: "dog", 2: "fox"}
    pipe = transformers.pipeline("image-classification", model=back,
                                 image_processor=transformers.AutoImageProcessor.from_pretrained(exported))
    for row, f in zip(sorted(rows, key=lambda r: r["file"]), files):
        best = pipe(str(f), top_k=1)[0]
        assert best["label"] == row["class_1"] and best["score"] == pytest.approx(float(row["probability_1"]), abs=1e-4)


@pytest.mark.parametrize("size, grid", [(24, (6, 6)), ([8, 12], (2, 3)), (None, (4, 4))])
def test_a_vit_folder_fine_tunes_at_another_image_size_with_timms_resampled_positions(tmp_path, capsys, size, grid):
    """timm's create_model(name, pretrained=True, img_size=...) at a Hugging Face folder: the data's image size
    (the checkpoint's when the recipe gives none), the 4x4 grid of positions resampled as resample_abs_pos_embed
    does (bicubic, antialiased when it shrinks), the class token's position and every other weight as they were."""
    from timm.layers import resample_abs_pos_embed

    from xformer.train.checkpoint import checkpoint_dir, read_eval_weights

    torch.manual_seed(0)
    hf = _vit()
    hf.save_pretrained(tmp_path / "vit")
    _png_folder(tmp_path / "images")
    data = {"root": str(tmp_path / "images"), **({"image_size": size} if size is not None else {})}
    recipe = tmp_path / "vit.yaml"
    recipe.write_text(yaml.safe_dump({
        "init_from": f"hf:{tmp_path / 'vit'}", "model": {"architecture": "encoder", "head": {"name": "classification"}},
        "data": {"name": "image_folder", "args": data}, "train": {"steps": 1, "batch_size": 4, "lr": 1e-9}}))
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert ("resampled tokenizer.pos_grid from 4x4 to" in out) == (grid != (4, 4)), out
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["tokenizer"]["args"]["image_size"] == [grid[0] * 4, grid[1] * 4]
    assert saved["data"]["args"]["image_size"] == (size if size is not None else [16, 16])
    weights = read_eval_weights(checkpoint_dir(run / "checkpoints", "last"))
    table = hf.vit.embeddings.position_embeddings.detach()  # (1, 1 + 16, d): the class token's, then the grid's
    theirs = resample_abs_pos_embed(table, new_size=list(grid), old_size=[4, 4], num_prefix_tokens=1)[0]
    torch.testing.assert_close(weights["tokenizer.pos_grid"], theirs[1:], rtol=0, atol=1e-6)
    torch.testing.assert_close(weights["tokenizer.pos_prefix"].reshape(-1), table[0, 0], rtol=0, atol=1e-6)
    torch.testing.assert_close(weights["tokenizer.proj.weight"], hf.vit.embeddings.patch_embeddings.projection.weight,
                               rtol=0, atol=1e-6)


def test_refusals_are_one_line(tmp_path, capsys):
    torch.manual_seed(0)
    _vit().save_pretrained(tmp_path / "vit")
    _png_folder(tmp_path / "images", size=(8, 8))
    capsys.readouterr()  # transformers' progress bar
    recipe = tmp_path / "vit.yaml"
    recipe.write_text(yaml.safe_dump({
        "model": {"architecture": "encoder", "head": {"name": "classification"}},
        "data": {"name": "image_folder", "args": {"root": str(tmp_path / "images"), "image_size": 10}},
        "train": {"steps": 1, "batch_size": 4}}))
    for argv, words in (
            (["train", str(recipe), "--init-from", f"hf:{tmp_path / 'vit'}", "--out", str(tmp_path / "r1")],
             ["data.args.image_size=10 is not a multiple of the checkpoint's patch size [4, 4]", "[8,8]"]),
            (["train", str(recipe), "data.name=digits", "data.args={image_size: 16}", "--init-from",
              f"hf:{tmp_path / 'vit'}", "--out", str(tmp_path / "r2")], ["channels"])):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and all(w in err for w in words), err

    # predict on a folder needs its image processor (how were its images normalised?) and a classifier
    for folder, words in ((tmp_path / "vit", ["preprocessor_config.json", "processor.save_pretrained"]),):
        assert main(["predict", str(folder), str(tmp_path / "images" / "new")]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and all(w in err for w in words), err
    _vit(transformers.ViTModel).save_pretrained(tmp_path / "bare")
    transformers.ViTImageProcessor(size={"height": 16, "width": 16}).save_pretrained(tmp_path / "bare")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "bare"), str(tmp_path / "images" / "new")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "without a classifier" in err, err

    # a ViT that Hugging Face's class cannot express: register tokens
    from xformer.core import CoreConfig
    from xformer.interop.export import check_exportable
    from xformer.interop.support import CannotExport
    from xformer.models import ModelConfig, PartConfig, build_model

    config = ModelConfig("encoder", CoreConfig(d_model=16, n_layers=1, n_heads=2),
                         PartConfig("image_patches", {"image_size": 8, "patch_size": 4, "register_tokens": 2}),
                         PartConfig("classification", {"n_classes": 3}))
    with pytest.raises(CannotExport, match="register tokens; use --format onnx"):
        check_exportable(build_model(config), "hf")
