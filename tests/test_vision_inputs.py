"""Unusual but valid image inputs, as timm / torchvision users bring them: integer tensors given to a model, float
RGB arrays and torch tensors given to predict_run (torchvision's conventions: uint8 is 0-255, float is [0, 1],
tensors are (C, H, W)). Each test failed on the code before its fix. Tiny runs only."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.config import ConfigError
from xformer.baselines import build_baseline

from test_vision_audit_predict import recipe, train, write_folder

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py


def tiny_vit(tokenizer: str = "image_patches", **args):
    return build_model(ModelConfig(
        architecture="encoder", core=CoreConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32),
        tokenizer=PartConfig(tokenizer, {"image_size": 8, "channels": 3, **args}),
        head=PartConfig("classification", {"n_classes": 3, "pool": "mean"}))).eval()


@pytest.mark.parametrize("tokenizer,args", [("image_patches", {"patch_size": 4}), ("image_conv", {}),
                                            ("image_hybrid", {"widths": [4]})])
def test_a_model_refuses_integer_images_rather_than_reading_0_to_255_as_floats(tokenizer, args):
    # torchvision.io.read_image gives uint8 (C, H, W); the model trained on [0, 1] floats, normalised
    model = tiny_vit(tokenizer, **args)
    images = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    with pytest.raises(ConfigError, match=r"torch.uint8 .*ToDtype\(torch.float32, scale=True\).*predict_run"):
        model({"images": images})
    assert model({"images": images.float() / 255})["logits"].shape == (2, 3)  # floats as before


def test_a_baseline_refuses_integer_images_in_one_line():
    model = build_baseline("cnn", image_size=8, channels=3, n_classes=3, widths=[4]).eval()
    with pytest.raises(ConfigError, match="torch.uint8"):
        model({"images": torch.zeros(1, 3, 8, 8, dtype=torch.uint8)})


@pytest.fixture(scope="module")
def rgb_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inputs")
    images = write_folder(tmp / "images")
    assert train(tmp, "run", recipe(images)) == 0
    return tmp / "run", images


def probabilities(run, inputs):
    from xformer.predict import predict_run

    rows, _ = predict_run(run, inputs, top_k=3)
    return [dict(row["top_k"]) for row in rows]


def test_predict_run_reads_float_rgb_arrays_and_tensors_as_their_uint8_file(rgb_run):
    run, images = rgb_run
    path = images / "val" / "red" / "0.png"
    pixels = np.array(Image.open(path).convert("RGB"))  # (H, W, 3) uint8
    tensor = torch.from_numpy(pixels).permute(2, 0, 1).contiguous()  # torchvision.io.read_image's layout
    inputs = [path, pixels, pixels / 255.0, (pixels / 255.0).astype(np.float32),  # matplotlib.imread: float32
              np.dstack([pixels / 255.0, np.ones(pixels.shape[:2])]),  # a float RGBA PNG from matplotlib
              tensor, tensor.float() / 255, tensor[None][0].double() / 255,
              pixels.astype(np.uint16) * 257]  # 16-bit colour (tifffile, imageio): as its 48-bit PNG file
    rows = probabilities(run, inputs)
    assert len(rows) == len(inputs)
    for row in rows[1:]:
        assert row == pytest.approx(rows[0], abs=1e-6)


def test_predict_run_takes_one_tensor_as_one_image_and_grey_tensors(rgb_run):
    run, images = rgb_run
    path = images / "val" / "green" / "1.png"
    grey = np.array(Image.open(path).convert("L"))
    file_rows = probabilities(run, [path])
    one = probabilities(run, torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1))
    assert len(one) == 1 and one[0] == pytest.approx(file_rows[0], abs=1e-6)  # not three grey images
    Image.fromarray(grey).save(images.parent / "grey.png")
    grey_rows = probabilities(run, [images.parent / "grey.png", torch.from_numpy(grey), torch.from_numpy(grey)[None],
                                    torch.from_numpy(grey)[None].float() / 255])
    for row in grey_rows[1:]:
        assert row == pytest.approx(grey_rows[0], abs=1e-6)


@pytest.mark.parametrize("bad,words", [
    (np.full((8, 8, 3), 200.0, np.float32), r"image 0: a float array .* values 200 to 200, outside \[0, 1\]"),
    (np.full((8, 8, 3), np.nan), r"image 0: a float array .*NaN"),
    (torch.rand(2, 3, 8, 8), r"image 0: a torch tensor of shape \(2, 3, 8, 8\).*list\(batch\)"),
    (torch.rand(8, 8, 3), r"image 0: a torch tensor of shape \(8, 8, 3\).*\(C, H, W\).*permute\(2, 0, 1\)"),
    (np.zeros((3, 8, 8), np.uint8), r"image 0: an array of uint8 \(3, 8, 8\).*transpose\(1, 2, 0\)"),
])
def test_predict_run_refuses_arrays_it_cannot_read_in_one_line(rgb_run, bad, words):
    from xformer.predict import predict_run

    with pytest.raises(ConfigError, match=words) as caught:
        predict_run(rgb_run[0], [bad])
    assert "\n" not in str(caught.value) and "image image" not in str(caught.value)


def test_a_grey_float_image_outside_0_1_is_named_once(rgb_run):
    from xformer.predict import predict_run

    with pytest.raises(ConfigError) as caught:  # a PIL image of mode F (32-bit float grey)
        predict_run(rgb_run[0], [Image.fromarray(np.full((8, 8), 200.0, np.float32))])
    assert str(caught.value).startswith("image 0 (mode F"), str(caught.value)


def test_a_warning_about_an_image_is_shown_once_not_at_every_read(tmp_path):
    """Each read used to reset Python's record of warnings already shown (warnings.catch_warnings around
    Image.open), so a warning (the 8-bit mode-I note, PIL's own about a file) came again at every read of every
    such image: one line per image per epoch in a training log."""
    import warnings

    from xformer.data.image_files import check_image_headers, open_image

    for i in range(3):
        Image.fromarray(np.full((4, 4), 100 + i, np.int32)).save(tmp_path / f"{i}.tif")  # 8-bit data in mode I
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        check_image_headers([str(tmp_path / f"{i}.tif") for i in range(3)])  # before training, then its reads
        for _ in range(2):
            for i in range(3):
                open_image(str(tmp_path / f"{i}.tif"), "L")
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and messages[0].startswith("a 32-bit integer image (mode I)"), messages


def test_a_palette_image_with_transparency_reads_as_its_colours_without_pils_warning(tmp_path):
    import warnings

    from xformer.data.image_files import open_image

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).convert("P")
    image.save(tmp_path / "p.png", transparency=bytes([0] * 10 + [255] * 246))  # a tRNS of bytes: GIF/PNG exports
    for mode in ("RGB", "L"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = np.asarray(Image.open(tmp_path / "p.png").convert(mode))  # PIL's (and torchvision's) pixels
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = np.asarray(open_image(str(tmp_path / "p.png"), mode))
        assert np.array_equal(got, expected)
        assert not caught, [str(w.message) for w in caught]


def latin1_name(folder, name: bytes):
    """folder/<name>, a name of latin-1 bytes (an old zip archive's, unpacked on Linux), or a skip where the file
    system refuses names that are not UTF-8."""
    import os

    try:
        os.mkdir(os.path.join(os.fsencode(folder), name))
    except OSError:
        pytest.skip("this file system takes UTF-8 names only")
    os.rmdir(os.path.join(os.fsencode(folder), name))
    return os.fsdecode(os.path.join(os.fsencode(folder), name))


def test_image_file_names_that_are_not_utf8_train_and_predict_to_a_file(tmp_path, capsysbinary):
    import os

    from xformer.cli import main

    images = write_folder(tmp_path / "images")
    odd = latin1_name(images / "train" / "red", b"caf\xe9.png")
    os.rename(images / "train" / "red" / "0.png", odd)  # was a UnicodeEncodeError traceback hashing the file list
    assert train(tmp_path, "run", recipe(images)) == 0
    out = tmp_path / "preds.csv"
    capsysbinary.readouterr()
    assert main(["predict", str(tmp_path / "run"), str(images / "train" / "red"), "--out", str(out)]) == 0
    assert main(["predict", str(tmp_path / "run"), str(images / "train" / "red")]) == 0
    # the name's own bytes, as standard output writes them (was a UnicodeEncodeError traceback)
    assert b"caf\xe9.png," in out.read_bytes()
    assert out.read_bytes() == capsysbinary.readouterr().out


def test_a_class_folder_name_that_is_not_utf8_is_refused_before_the_run_starts(tmp_path, capsys):
    import os

    images = write_folder(tmp_path / "images")
    for split in ("train", "val"):
        os.rename(images / split / "red", latin1_name(images / split, b"rouge\xe9"))
    # was a traceback drawing the confusion matrix after training, the run left without metrics.json
    assert train(tmp_path, "run", recipe(images)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "rouge\\udce9" in err and "not UTF-8" in err and "rename" in err
    assert not (tmp_path / "run").exists()


def test_predict_run_reads_a_bfloat16_tensor(rgb_run):
    # torch's own half formats have no numpy dtype: was TypeError "Got unsupported ScalarType BFloat16"
    rows = probabilities(rgb_run[0], [torch.rand(3, 8, 8).bfloat16(), torch.rand(8, 8).half()])
    assert len(rows) == 2
