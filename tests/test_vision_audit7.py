"""The image readers as a seventh audit found them: 32-bit integer and float grey images (read by one fixed rule,
not clipped to all white / all black), prepare.py's source folder with a class called train, links inside an
image folder (a loop, a link to nothing; linked files and folders as torchvision counts them) and images over
PIL's decompression-bomb limit."""
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xformer.config import ConfigError
from xformer.data.image_augment import convert_image, to_8_bits
from xformer.data.image_files import check_image_headers, image_class_folder, images_under, open_image
from xformer.data.registry import build_data
from xformer.errors import UserError
from xformer.predict import image_files, load_image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data" / "image_folder"))
import prepare  # noqa: E402

SPEC = {"image_size": [8, 8], "channels": 1, "mean": [0.5], "std": [0.5], "resize": "antialias"}


def grey(path, array) -> Path:
    Image.fromarray(array).save(path)
    return Path(path)


def coloured_folder(root: Path, classes=("left", "right"), n=3) -> Path:
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            grey(root / name / f"{i}.png", np.full((8, 8), 40 + 80 * k + i, np.uint8))
    return root


# 1. modes I and F -----------------------------------------------------------------------------------------------

def test_32_bit_integer_and_float_images_are_read_by_a_fixed_rule_not_clipped(tmp_path):
    """Before: a mode-I TIFF came out all white and a mode-F TIFF all black, dark and bright alike."""
    means = {}
    for kind, dark, bright in (("i16", np.uint16(40 * 257), np.uint16(200 * 257)),
                               ("i32", np.int32(40 * 257), np.int32(200 * 257)),
                               ("f32", np.float32(40 / 255), np.float32(200 / 255))):
        for level, value in (("dark", dark), ("bright", bright)):
            path = grey(tmp_path / f"{kind}_{level}.{'png' if kind == 'i16' else 'tif'}", np.full((8, 8), value))
            means[kind, level] = float(load_image(path, SPEC).mean())  # predict's reader
            with Image.open(path) as im:
                assert im.mode == {"i16": "I;16", "i32": "I", "f32": "F"}[kind]
            trained = np.asarray(open_image(str(path), "L"))  # training's reader
            assert (trained == {"dark": 40, "bright": 200}[level]).all(), (kind, level)
    for kind in ("i16", "i32", "f32"):  # (x / 255 - 0.5) / 0.5
        assert means[kind, "dark"] == pytest.approx(40 / 127.5 - 1, abs=1e-4)
        assert means[kind, "bright"] == pytest.approx(200 / 127.5 - 1, abs=1e-4)


def test_a_16_bit_image_reads_the_same_whether_pillow_calls_it_I_16_or_I():
    """Older Pillow opened 16-bit PNGs as mode I: the same words give the same 8-bit pixels either way."""
    words = np.linspace(0, 65535, 256).round().astype(np.int64).reshape(16, 16)  # 0, 257, ..., 65535
    as_16, as_32 = Image.fromarray(words.astype(np.uint16)), Image.fromarray(words.astype(np.int32))
    assert (as_16.mode, as_32.mode) == ("I;16", "I")
    for mode in ("L", "RGB"):
        np.testing.assert_array_equal(np.asarray(convert_image(as_16, mode)), np.asarray(convert_image(as_32, mode)))
    np.testing.assert_array_equal(np.asarray(to_8_bits(as_32)), words >> 8)  # floor(v / 256): 65535 -> 255


@pytest.mark.parametrize("array, shown", [
    (np.full((4, 4), 3.5, np.float32), "values 3.5 to 3.5, outside [0, 1]"),
    (np.array([[0.2, np.nan]], np.float32), "NaN"),
    (np.array([[0, 70000]], np.int32), "values 0 to 70000, outside [0, 65535]"),
    (np.array([[-5, 9]], np.int32), "values -5 to 9, outside [0, 65535]"),
])
def test_values_without_an_8_bit_reading_are_refused_in_one_line_before_training(tmp_path, array, shown):
    path = grey(tmp_path / "odd.tif", array)
    for read in (lambda: load_image(path, SPEC), lambda: open_image(str(path), "L"),
                 lambda: check_image_headers([path])):  # the last: before training, from the header check
        with pytest.raises(ConfigError) as caught:
            read()
        message = str(caught.value)
        assert "\n" not in message and str(path) in message and shown in message and "scale" in message


def test_a_folder_of_float_tiffs_gives_dark_and_bright_classes_apart(tmp_path):
    for split, n in (("train", 3), ("val", 2)):
        for name, level in (("dark", 0.2), ("bright", 0.8)):
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(n):
                grey(tmp_path / split / name / f"{i}.tif", np.full((8, 8), level, np.float32))
    bundle = build_data("image_folder", {"root": str(tmp_path), "image_size": 8, "channels": 1})
    by_class = {int(item["labels"]): float(item["images"].mean()) for item in bundle.val}
    assert by_class[0] == pytest.approx(0.8 * 2 - 1, abs=0.01) and by_class[1] == pytest.approx(0.2 * 2 - 1, abs=0.01)


# 2. prepare.py and a class called train -------------------------------------------------------------------------

def test_prepare_splits_a_source_folder_with_a_class_called_train(tmp_path):
    """Before: 'wild is laid out already (it has train/)', and in place: 'wild/train holds no class sub-folders'."""
    wild = coloured_folder(tmp_path / "wild", ("bus", "train", "tractor"), n=5)
    classes = prepare.main([str(wild), "--out", str(tmp_path / "out")])
    assert classes["class_names"] == ["bus", "tractor", "train"]
    assert classes["counts"]["train"]["train"] == 4 and classes["counts"]["val"]["train"] == 1
    laid_out = tmp_path / "out"  # train/ of class folders: laid out, checked in place, never split again
    with pytest.raises(UserError, match="laid out already .* holds class folders.*leave out --out"):
        prepare.main([str(laid_out), "--out", str(tmp_path / "again")])
    assert prepare.main([str(laid_out)])["class_names"] == ["bus", "tractor", "train"]


# 3. and 4. links --------------------------------------------------------------------------------------------------

def test_a_link_loop_in_a_class_folder_is_refused_naming_the_link(tmp_path):
    """Before: ``ln -s . train/left/again`` read left's images 41 times, copies landing in validation."""
    train = coloured_folder(tmp_path / "loop" / "train")
    os.symlink(".", train / "left" / "again")
    for read in (lambda: build_data("image_folder", {"root": str(tmp_path / "loop"), "image_size": 8}),
                 lambda: images_under(tmp_path / "loop"), lambda: image_files([tmp_path / "loop"]),
                 lambda: prepare.main([str(tmp_path / "loop")])):
        with pytest.raises(ConfigError) as caught:
            read()
        message = str(caught.value)
        assert "\n" not in message and str(train / "left" / "again") in message and "loop" in message


def test_linked_files_and_folders_count_as_torchvision_counts_them(tmp_path):
    from torchvision.datasets import ImageFolder

    train = coloured_folder(tmp_path / "data" / "train")
    extra = coloured_folder(tmp_path / "extra", ("more",), n=2) / "more"
    os.symlink(extra, train / "left" / "more")  # a linked folder: its 2 images are left's
    os.symlink(extra, train / "right" / "same_more")  # linked twice, no loop: counted in both, as torchvision does
    os.symlink(extra / "0.png", train / "left" / "linked.png")  # a linked file: one image
    ours = image_class_folder(train, loader=lambda p: p)
    theirs = ImageFolder(str(train), loader=lambda p: p)
    assert ours.samples == theirs.samples and len(ours.samples) == 3 + 2 + 1 + 3 + 2
    assert [str(p) for p in images_under(train)] == sorted(path for path, _ in theirs.samples)


def test_a_class_folder_that_links_to_nothing_is_refused_naming_it(tmp_path):
    """Before: an unmounted drive's class was dropped without a word (classes ['left', 'right'])."""
    train = coloured_folder(tmp_path / "dang" / "train")
    gone = coloured_folder(tmp_path / "mount", ("up",)) / "up"
    os.symlink(gone, train / "up")
    for name in os.listdir(gone):
        os.remove(gone / name)
    os.rmdir(gone)
    for read in (lambda: build_data("image_folder", {"root": str(tmp_path / "dang"), "image_size": 8}),
                 lambda: prepare.main([str(tmp_path / "dang" / "train"), "--out", str(tmp_path / "out")])):
        with pytest.raises((ConfigError, UserError)) as caught:
            read()
        assert str(caught.value) == (f"{train / 'up'} is a link to {gone}, which does not exist; mount it or remove "
                                     "the link")


# 5. images over PIL's limit ----------------------------------------------------------------------------------------

def test_an_image_over_pils_limit_is_too_large_in_one_line_everywhere(tmp_path, monkeypatch):
    """Before: predict said "give a PNG, JPEG or another image file" for a valid PNG, training "replace it"."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # the limit: 2000 pixels
    big = grey(tmp_path / "big.png", np.zeros((50, 50), np.uint8))
    messages = []
    for read, error in ((lambda: load_image(big, SPEC), ConfigError), (lambda: open_image(str(big), "L"), UserError),
                        (lambda: check_image_headers([big]), UserError)):
        with pytest.raises(error) as caught:
            read()
        messages.append(str(caught.value))
    assert len(set(messages)) == 1
    assert messages[0].startswith(f"image {big} is too large (2,500 pixels; PIL reads at most 2,000")
    assert "downscale it" in messages[0] and "PIL.Image.MAX_IMAGE_PIXELS" in messages[0]
    assert "give a PNG" not in messages[0] and "\n" not in messages[0]


def test_an_image_between_pils_warning_and_its_limit_is_read_without_its_warning(tmp_path, monkeypatch):
    """Before: predict printed PIL's DecompressionBombWarning with its source line, then the prediction."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    large = grey(tmp_path / "large.png", np.full((40, 40), 200, np.uint8))  # 1,600 pixels: PIL would warn
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x = load_image(large, SPEC)
        trained = open_image(str(large), "L")
        check_image_headers([large])
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert torch.allclose(x, torch.full_like(x, 200 / 127.5 - 1), atol=1e-4) and trained.size == (40, 40)


def test_a_mode_i_image_of_8_bit_values_is_read_by_the_rule_and_warned_about_once(tmp_path):
    """8-bit data saved as 32-bit integers (numpy int32 -> TIFF) has no value above 255: read as 16-bit it is
    nearly black, so the user is told, once however many such images are read."""
    import warnings

    values = (np.arange(64, dtype=np.int32).reshape(8, 8) * 4)  # 0 .. 252
    for name in ("a.tif", "b.tif"):
        Image.fromarray(values).save(tmp_path / name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        grey = [np.asarray(convert_image(Image.open(tmp_path / n), "L")) for n in ("a.tif", "b.tif")]
    np.testing.assert_array_equal(grey[0], values >> 8)  # the rule for mode I, not a per-image reading
    said = [str(w.message) for w in caught if "holds no value above 255" in str(w.message)]
    assert len(said) == 1 and "multiply them by 256" in said[0], said


def test_commands_print_xformers_own_warnings_as_one_plain_line(capsys):
    """In a command, a warning of xformer's own code is `xformer: warning: ...`, others' keep Python's form."""
    import os

    import xformer
    from xformer.cli import own_warnings_plain

    others = []
    show = own_warnings_plain(lambda *args: others.append(args))
    inside = os.path.join(os.path.dirname(xformer.__file__), "data", "image_augment.py")
    show(UserWarning("a 32-bit integer image ..."), UserWarning, inside, 12)
    show(UserWarning("torch says"), UserWarning, "/usr/lib/python3/site-packages/torch/x.py", 3)
    assert capsys.readouterr().err == "xformer: warning: a 32-bit integer image ...\n"
    assert len(others) == 1 and str(others[0][0]) == "torch says"
