"""Audit of the image workflow (predict, attention, image folders, image tokenizers): each test fails on the
code before its fix. Tiny runs only (d_model 16, one layer, a few steps)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from xformer.cli import main
from xformer.config import ConfigError

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

CLASSES = ("blue", "green", "red")
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}


def write_folder(root: Path, splits=(("train", 4), ("val", 2)), size=16, seed=0) -> Path:
    """root/<split>/<class>/<i>.png: noise with a coloured square off to the left (so a mirror image differs)."""
    rng = np.random.default_rng(seed)
    for split, n in splits:
        for name, colour in COLOURS.items():
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                a = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
                a[2:size - 4, 1:size // 2] = colour
                Image.fromarray(a).save(root / split / name / f"{i}.png")
    return root


def recipe(root: Path, steps: int = 4, **data_args) -> dict:
    return {
        "model": {"architecture": "encoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
                  "tokenizer": {"name": "image_patches", "args": {"patch_size": 4}},
                  "head": {"name": "classification"}},
        "data": {"name": "image_folder", "args": {"root": str(root), "image_size": 8, **data_args}},
        "train": {"steps": steps, "batch_size": 6, "lr": 3e-3, "eval_every": steps, "log_every": steps,
                  "warmup_steps": 0},
    }


def train(tmp: Path, name: str, spec: dict, out: Path | None = None) -> int:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return main(["train", str(path), "--out", str(out or tmp / name), "--quiet"])


@pytest.fixture(scope="module")
def image_run(tmp_path_factory) -> tuple[Path, Path]:
    """A run on 16x16 images resized to 8x8 (so predict's resize is exercised), flipping every training image."""
    tmp = tmp_path_factory.mktemp("audit")
    images = write_folder(tmp / "images")
    assert train(tmp, "run", recipe(images, hflip=1.0)) == 0
    return tmp / "run", images


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# ---- A1: shrinking keeps thin strokes; predict repeats the run's own evaluation ------------------------------

DIGITS_SPEC = {"image_size": [8, 8], "channels": 1, "mean": None, "std": None, "resize": "bilinear"}


def test_a1_shrinking_a_thin_stroke_to_digits_size_keeps_its_ink(tmp_path):
    from xformer.predict import load_image

    a = np.zeros((64, 64), np.uint8)
    a[8:56, 30:32] = 255  # a '1' two pixels wide: sampling every 8th pixel misses it
    Image.fromarray(a).save(tmp_path / "one.png")
    x = load_image(tmp_path / "one.png", DIGITS_SPEC)
    assert x.max() > 0
    expect = torch.tensor(a, dtype=torch.float32).reshape(8, 8, 8, 8).mean((1, 3)) / 255  # each cell's ink
    assert torch.allclose(x[0], expect, atol=1e-6)


def test_a_digits_run_at_16_pixels_reads_a_file_as_its_8x8_digit_upsampled_as_in_training(tmp_path):
    """digits at image_size 16 are sklearn's 8x8 images upsampled bilinearly: a user's file is brought to 8x8
    first (its ink averaged), then upsampled the same way, not shrunk straight to 16x16."""
    import torch.nn.functional as F

    from xformer.data.images import digits
    from xformer.predict import load_image

    digits(image_size=16).save(tmp_path)  # the preprocess.json of a run folder
    spec = json.loads((tmp_path / "preprocess.json").read_text())
    assert spec["source_size"] == [8, 8] and spec["image_size"] == [16, 16]
    a = np.zeros((64, 64), np.uint8)
    a[8:56, 30:32] = 255
    Image.fromarray(a).save(tmp_path / "one.png")
    eight = torch.tensor(a, dtype=torch.float32).reshape(8, 8, 8, 8).mean((1, 3)) / 255
    expect = F.interpolate(eight[None, None], size=(16, 16), mode="bilinear", align_corners=False)[0].clamp(0, 1)
    torch.testing.assert_close(load_image(tmp_path / "one.png", spec), expect)
    # a file of the data's own 8x8 image gives the data's 16x16 tensor
    from sklearn.datasets import load_digits

    image = load_digits().images[0]
    Image.fromarray(np.round(image / 16 * 255).astype(np.uint8)).save(tmp_path / "zero.png")
    own = F.interpolate(torch.tensor(np.round(image / 16 * 255) / 255, dtype=torch.float32)[None, None],
                        size=(16, 16), mode="bilinear", align_corners=False)[0].clamp(0, 1)
    torch.testing.assert_close(load_image(tmp_path / "zero.png", spec), own)


def test_a1_predict_on_the_runs_val_images_gives_the_evaluation_probabilities(image_run):
    """image_folder runs resize with antialiasing in training; predict on the same files gives the same numbers
    (a guard kept with the A1 fix: it passed before it too)."""
    from xformer.predict import predict_run
    from xformer.train.run import load_run

    run, _ = image_run
    _, model, data = load_run(run)
    model.eval()
    order = data.val.source  # the seeded order over the val ImageFolder
    files = [order.dataset.samples[i][0] for i in order.indices]
    with torch.no_grad():
        expect = model({"images": torch.stack([data.val[i]["images"] for i in range(len(files))])})["logits"]
    rows, _ = predict_run(run, files, top_k=3)
    probs = expect.softmax(-1)
    for k, row in enumerate(rows):
        assert row["file"] == files[k]
        for name, p in row["top_k"]:
            assert p == pytest.approx(float(probs[k, CLASSES.index(name)]), abs=1e-6)


# ---- A3: hidden entries are no classes; no run folder inside the data -----------------------------------------

def test_a3_hidden_folders_and_files_are_neither_classes_nor_images(tmp_path):
    from xformer.data.images import image_folder
    from xformer.predict import image_files

    root = write_folder(tmp_path / "images")
    for hidden in (root / "train" / ".ipynb_checkpoints", root / "train" / "red" / ".ipynb_checkpoints"):
        hidden.mkdir()
        Image.new("RGB", (8, 8)).save(hidden / "x.png")
    Image.new("RGB", (8, 8)).save(root / "train" / "red" / ".x.png")
    data = image_folder(str(root), image_size=8)
    assert data.train.source.classes == list(CLASSES)
    assert len(data.train) == 12 and not any("/." in path for path, _ in data.train.source.samples)
    assert len(image_files([root / "train"])) == 12  # predict lists a folder as training does


def test_a3_a_run_folder_inside_the_data_is_refused_and_not_left_behind(tmp_path, capsys):
    from xformer.folders import check_run_outside_data

    root = write_folder(tmp_path / "images")
    assert train(tmp_path, "inside", recipe(root, steps=1), out=root / "train" / "run1") == 2
    err = one_line_error(capsys)
    assert "inside data.args.root" in err and "outside the data" in err
    assert sorted(p.name for p in (root / "train").iterdir()) == list(CLASSES)
    with pytest.raises(ConfigError, match="inside data.args.root"):
        check_run_outside_data(root / "val" / "r", root)
    check_run_outside_data(tmp_path / "runs" / "r", root)  # beside the data: fine


# ---- A4: attention on a split's image ---------------------------------------------------------------------------

def captured_grid(monkeypatch, argv) -> dict:
    import xformer.analysis.attention_maps as maps

    seen = {}

    def capture(model, image, path, title=None, mean=None, std=None):
        seen.update(image=image, title=title, mean=mean, std=std)
        Path(path).write_bytes(b"grid")
        return Path(path)

    monkeypatch.setattr(maps, "save_attention_grid", capture)
    assert main(argv) == 0
    return seen


def test_a4_a_split_image_is_drawn_with_the_runs_normalisation_undone_and_named(image_run, tmp_path, monkeypatch):
    run, _ = image_run
    spec = json.loads((run / "preprocess.json").read_text())
    seen = captured_grid(monkeypatch, ["attention", str(run), "--split", "val", "--index", "0",
                                       "--out", str(tmp_path / "a.png")])
    assert seen["mean"] == spec["mean"] and seen["std"] == spec["std"]
    true, predicted = seen["title"].split("\n")
    assert true.removeprefix("true ") in CLASSES and predicted.removeprefix("predicted ").split(" (")[0] in CLASSES


def test_a4_a_train_image_is_drawn_without_its_augmentation(image_run, tmp_path, monkeypatch):
    from xformer.predict import image_classifier_info, load_image
    from xformer.train.run import load_run

    run, _ = image_run  # trained with hflip=1.0: every augmented view is the mirror image
    _, _, data = load_run(run)
    source = data.train.source  # a Subset of the train ImageFolder (val/ exists: the whole folder)
    path, label = source.samples[0] if hasattr(source, "samples") else source.dataset.samples[source.indices[0]]
    seen = captured_grid(monkeypatch, ["attention", str(run), "--split", "train", "--index", "0",
                                       "--out", str(tmp_path / "t.png")])
    spec, _ = image_classifier_info(run)
    assert torch.allclose(seen["image"], load_image(path, spec), atol=1e-6)
    assert seen["title"].startswith(f"true {CLASSES[label]}\n")


# ---- B1, C7: where predict and attention may write ------------------------------------------------------------

def test_b1_an_out_under_a_file_is_refused_before_any_work(image_run, tmp_path, capsys, monkeypatch):
    import xformer.predict

    run, images = image_run
    (tmp_path / "afile").write_text("mine")
    monkeypatch.setattr(xformer.predict, "predict_run", lambda *a, **k: pytest.fail("predicted before checking"))
    image = str(images / "val" / "red" / "0.png")
    assert main(["predict", str(run), image, "--out", str(tmp_path / "afile" / "x.csv")]) == 2
    assert "afile is a file" in one_line_error(capsys)
    assert main(["attention", str(run), "--out", str(tmp_path / "afile" / "x.png")]) == 2
    assert "afile is a file" in one_line_error(capsys)
    assert (tmp_path / "afile").read_text() == "mine"


def test_c7_no_new_file_is_written_into_the_run_folder_either(image_run, capsys):
    run, images = image_run
    image = str(images / "val" / "red" / "0.png")
    for argv in (["predict", str(run), image, "--out", str(run / "preds.csv")],
                 ["attention", str(run), "--out", str(run / "mine.png")]):
        assert main(argv) == 2
        assert "file of the run folder" in one_line_error(capsys)
    assert not (run / "preds.csv").exists() and not (run / "mine.png").exists()


# ---- B2: a run without preprocess.json, trained on oblong images ----------------------------------------------

def test_b2_the_fallback_transform_takes_height_and_width():
    from xformer.data.images import default_preprocess

    assert default_preprocess("image_folder", {"image_size": [28, 36]})["image_size"] == [28, 36]
    assert default_preprocess("image_folder", {"image_size": 20})["image_size"] == [20, 20]
    assert default_preprocess("mnist", {"image_size": [28, 32]})["image_size"] == [28, 32]


# ---- C5: token limits of the convolutional tokenizers ---------------------------------------------------------

def test_c5_conv_and_hybrid_tokenizers_refuse_too_many_tokens_naming_a_fix():
    from xformer.core import CoreConfig
    from xformer.tokenizers.image_conv import image_conv_tokenizer
    from xformer.tokenizers.image_hybrid import image_hybrid_tokenizer

    core = CoreConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32)
    cct_32 = {"n_conv_layers": 2, "conv_channels": [32]}
    with pytest.raises(ConfigError, match=r"512x512 .* makes 16384 tokens .* limit of 4096; use n_conv_layers=5"):
        image_conv_tokenizer(core, image_size=512, **cct_32)
    fixed = image_conv_tokenizer(core, image_size=512, n_conv_layers=5, conv_channels=[8, 8, 8, 8])
    assert fixed.grid[0] * fixed.grid[1] <= 256
    with pytest.raises(ConfigError, match=r"makes 16384 tokens .* limit of 4096; use widths with 5 stages"):
        image_hybrid_tokenizer(core, image_size=512, widths=[8, 8])
    with pytest.raises(ConfigError, match=r"makes 65536 tokens .* use pool_stages=5"):
        image_hybrid_tokenizer(core, image_size=512, widths=[8] * 5, pool_stages=1)
    assert image_conv_tokenizer(core, image_size=32, **cct_32).grid == (8, 8)  # the recipe's own size: fine


# ---- C7: one list of image suffixes, no image left silently aside ---------------------------------------------

def test_c7_gif_images_are_read_by_training_as_by_predict(tmp_path):
    from xformer.data import image_files
    from xformer.data.images import image_folder
    from xformer.predict import IMAGE_SUFFIXES

    root = write_folder(tmp_path / "images")
    Image.new("RGB", (8, 8), (200, 0, 0)).save(root / "train" / "red" / "extra.gif")
    assert IMAGE_SUFFIXES is image_files.IMAGE_SUFFIXES and ".gif" in IMAGE_SUFFIXES
    data = image_folder(str(root), image_size=8)
    assert any(path.endswith("extra.gif") for path, _ in data.train.source.samples)


def test_c7_an_image_beside_the_class_folders_is_refused_naming_it(tmp_path):
    from xformer.data.images import image_folder

    root = write_folder(tmp_path / "images")
    Image.new("RGB", (8, 8)).save(root / "train" / "stray.png")
    with pytest.raises(ConfigError, match=r"train holds 1 image\(s\) beside its class folders \(stray.png\)"):
        image_folder(str(root), image_size=8)


# ---- C4, C6: advice that works ------------------------------------------------------------------------------

def test_c4_a_class_of_one_image_gets_advice_that_works(tmp_path):
    from xformer.data.images import image_folder

    root = write_folder(tmp_path / "images", splits=(("train", 3),))
    for extra in list((root / "train" / "green").iterdir())[1:]:
        extra.unlink()
    with pytest.raises(ConfigError) as caught:
        image_folder(str(root), image_size=8)
    assert "class green has one training image" in str(caught.value)
    assert "val_fraction=0" not in str(caught.value) and "add images to that class" in str(caught.value)


def test_c6_a_missing_data_root_is_said_to_be_missing(tmp_path):
    from xformer.data.images import image_folder

    with pytest.raises(ConfigError, match=f"data.args.root {tmp_path / 'missing'} does not exist"):
        image_folder(str(tmp_path / "missing"))


# ---- D: the report's file names without test/ ---------------------------------------------------------------

def test_d_the_doc_names_the_report_files_of_a_run_without_test(image_run):
    run, _ = image_run  # images/ has train/ and val/ only
    assert (run / "val_classification.json").is_file() and (run / "val_confusion_matrix.png").is_file()
    doc = (Path(__file__).resolve().parents[1] / "docs" / "vision.md").read_text()
    assert "val_classification.json" in doc and "val_confusion_matrix.png" in doc


def test_a_pipe_named_as_an_image_is_said_to_be_no_file_and_a_missing_one_missing(tmp_path):
    from xformer.predict import image_files

    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(ConfigError, match=r"pipe.png is neither a file nor a folder; give image files"):
        image_files([tmp_path / "pipe.png"])
    with pytest.raises(ConfigError, match=r"absent.png does not exist; give image files"):
        image_files([tmp_path / "absent.png"])
