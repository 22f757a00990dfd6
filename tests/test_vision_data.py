"""Image datasets, augmentation, analysis (rollout, reports) and a tiny ViT that learns digits."""
import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from train_helpers import fit_on_tensors
from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.analysis import attention_rollout, collect_attention, save_attention_grid, save_classification_report
from xformer.analysis.classification import classification_report, evaluate_classifier
from xformer.config import ConfigError
from xformer.data.image_augment import ImageCollate, make_mixup, model_ema, train_transform
from xformer.data.registry import build_data



@pytest.fixture(scope="module")
def digits():
    return build_data("digits", {})


def _all(ds):
    items = [ds[i] for i in range(len(ds))]
    return torch.stack([it["images"] for it in items]), torch.stack([it["labels"] for it in items])


def test_digits_split_is_fixed_stratified_and_disjoint(digits):
    assert (len(digits.train) + len(digits.val), len(digits.test)) == (1437, 360)
    assert (len(digits.train), len(digits.val)) == (1293, 144)
    x_tr, y_tr = _all(digits.train)
    x_te, y_te = _all(digits.test)
    assert x_tr.shape[1:] == (1, 8, 8) and 0.0 <= x_tr.min() and x_tr.max() == 1.0
    assert len(np.unique(x_tr.numpy() * 16)) == 17  # 16 levels (0..16) scaled to [0, 1]
    counts = torch.bincount(y_te, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified: ~36 of each class
    flat_tr = {tuple(v) for v in x_tr.flatten(1).tolist()}
    overlap = sum(tuple(v) in flat_tr for v in x_te.flatten(1).tolist())
    assert overlap <= 2  # sklearn digits holds a couple of duplicate images; splits are by index
    assert digits.model_args == {"tokenizer": {"image_size": [8, 8], "channels": 1}, "head": {"n_classes": 10}}
    again = build_data("digits", {})
    assert torch.equal(_all(again.test)[1], y_te)  # the same split every time


def test_digits_options(digits):
    up = build_data("digits", {"image_size": 16, "val_fraction": 0.0})
    assert up.val is None and len(up.train) == 1437 and up.train[0]["images"].shape == (1, 16, 16)
    wide = build_data("digits", {"image_size": [8, 12]})  # [height, width], as image_folder takes it
    assert wide.train[0]["images"].shape == (1, 8, 12) and wide.model_args["tokenizer"]["image_size"] == [8, 12]
    with pytest.raises(ConfigError, match=r"one size or \[height, width\], got \[1, 2, 3\]"):
        build_data("digits", {"image_size": [1, 2, 3]})
    with pytest.raises(ConfigError, match="hflip"):
        build_data("digits", {"hflip": 0.5})  # flipping digits is not offered
    with pytest.raises(ConfigError, match="head.args.label_smoothing"):
        build_data("digits", {"label_smoothing": 0.1})


def test_digits_val_seed_moves_the_validation_fold_but_never_the_test_split(digits):
    other = build_data("digits", {"val_seed": 1})
    assert torch.equal(_all(other.test)[0], _all(digits.test)[0])
    val0 = {tuple(v) for v in _all(digits.val)[0].flatten(1).tolist()}
    val1 = {tuple(v) for v in _all(other.val)[0].flatten(1).tolist()}
    assert len(other.val) == 144 and len(val0 & val1) < 60  # another fold (about 10% overlap by chance)
    assert torch.bincount(_all(other.val)[1], minlength=10).min() >= 14  # still stratified


def test_affine_takes_a_mapping_of_its_settings():
    from torchvision.transforms import v2

    from xformer.data.image_augment import random_affine

    t = random_affine({"degrees": 0, "translate": [0.25, 0.25], "scale": None, "interpolation": "bilinear"})
    assert t.degrees == [0.0, 0.0] and t.translate == (0.25, 0.25) and t.scale is None
    assert t.interpolation == v2.InterpolationMode.BILINEAR
    image = torch.zeros(1, 8, 8)
    image[0, 3:5, 3:5] = 1.0
    torch.manual_seed(0)
    moved = [t(image) for _ in range(20)]
    assert all(m.sum() == pytest.approx(4.0, abs=1e-4) for m in moved)  # shifts only: mass kept
    assert any(not torch.allclose(m, image) for m in moved)
    bundle = build_data("digits", {"affine": {"degrees": 5}})
    assert bundle.train[0]["images"].shape == (1, 8, 8)
    with pytest.raises(ConfigError, match="unknown key"):
        build_data("digits", {"affine": {"rotate": 5}})
    with pytest.raises(ConfigError, match="interpolation"):
        random_affine({"interpolation": "cubic"})


def test_mixup_touches_training_batches_only():
    bundle = build_data("digits", {"mixup": 0.8, "cutmix": 1.0, "label_smoothing": 0.1, "affine": True})
    train = next(iter(DataLoader(bundle.train, batch_size=8, collate_fn=bundle.collate)))
    assert train["labels"].shape == (8, 10) and torch.allclose(train["labels"].sum(-1), torch.ones(8))
    test = next(iter(DataLoader(bundle.test, batch_size=8, collate_fn=bundle.collate)))
    assert test["labels"].shape == (8,) and test["labels"].dtype == torch.long
    odd = ImageCollate(make_mixup(10, mixup=1.0))([bundle.train[i] for i in range(3)])
    assert odd["labels"].shape == (3,)  # odd batches stay unmixed


def test_train_transform_steps_are_switchable():
    img = torch.rand(3, 32, 32)
    assert torch.equal(train_transform((32, 32))(img), img)  # everything off: identity
    out = train_transform((24, 24), (0.5,) * 3, (0.25,) * 3, crop_scale=(0.5, 1.0), hflip=0.5,
                          auto_augment="rand", random_erasing=1.0)(img)
    assert out.shape == (3, 24, 24)
    assert train_transform((32, 32), auto_augment="trivial")(torch.rand(1, 32, 32)).shape == (1, 32, 32)
    with pytest.raises(ConfigError, match="auto_augment"):
        train_transform((8, 8), auto_augment="auto")


def test_missing_torchvision_files_name_the_expected_path(tmp_path):
    with pytest.raises(ConfigError, match=f"expected {tmp_path}/cifar-10-batches-py"):
        build_data("cifar10", {"root": str(tmp_path)})
    with pytest.raises(ConfigError, match="MNIST/raw/train-images-idx3-ubyte"):
        build_data("mnist", {"root": str(tmp_path)})
    with pytest.raises(ConfigError, match="one sub-folder per class"):
        build_data("image_folder", {"root": str(tmp_path)})


def _write_idx(path, array):
    dims = array.shape
    header = bytes([0, 0, 8, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_mnist_reads_idx_files(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 10)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    bundle = build_data("mnist", {"root": str(tmp_path), "image_size": 16, "val_fraction": 0.25})
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (30, 10, 10)
    item = bundle.test[0]
    assert item["images"].shape == (1, 16, 16) and item["labels"].dtype == torch.long
    assert bundle.model_args["tokenizer"] == {"image_size": [16, 16], "channels": 1}


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("test", 2)):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(tmp_path / split / cls / f"{i}.png")
    bundle = build_data("image_folder", {"root": str(tmp_path), "image_size": 16, "val_fraction": 0.25, "hflip": 0.5})
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (6, 2, 4)
    batch = next(iter(DataLoader(bundle.train, batch_size=3, collate_fn=bundle.collate)))
    assert batch["images"].shape == (3, 3, 16, 16)
    bundle.save(tmp_path)
    assert json.loads((tmp_path / "classes.json").read_text()) == {"class_names": ["cat", "dog"]}


def _tiny_vit(**head):
    return build_model(ModelConfig("encoder", CoreConfig(d_model=64, n_layers=2, n_heads=4, d_ff=128),
                                   PartConfig("image_patches", {"image_size": 8, "patch_size": 2, "channels": 1}),
                                   PartConfig("classification", {"n_classes": 10, **head})))


def test_attention_rollout_rows_sum_to_one_and_png_is_written(tmp_path, digits):
    model = _tiny_vit().eval()
    images = _all(digits.test)[0][:2]
    maps, state, out = collect_attention(model, {"images": images})
    assert len(maps) == 2 and maps[0].shape == (2, 4, 17, 17) and state["grid"] == (4, 4)
    rollout = attention_rollout(maps)
    torch.testing.assert_close(rollout.sum(-1), torch.ones(2, 17))
    # one layer of uniform attention: R = 0.5 I + 0.5 / N
    uniform = torch.full((1, 2, 5, 5), 0.2)
    torch.testing.assert_close(attention_rollout([uniform])[0], 0.5 * torch.eye(5) + 0.1)
    path = save_attention_grid(model, images[0], tmp_path / "attention.png")
    assert path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_classification_report_and_confusion_png(tmp_path):
    report = classification_report(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0]), 4)
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["per_class_accuracy"] == {"0": 0.5, "1": 1.0, "2": pytest.approx(2 / 3), "3": None}
    assert report["confusion_matrix"][2] == [1, 0, 2, 0]
    model = _tiny_vit()
    batches = [{"images": torch.rand(4, 1, 8, 8), "labels": torch.tensor([0, 1, 2, 3])}]
    saved = save_classification_report(tmp_path, model, batches, 10)
    assert (tmp_path / "test_confusion_matrix.png").stat().st_size > 1000
    assert saved["accuracy"] == evaluate_classifier(model, batches)["accuracy"]


def test_model_ema_is_exposed():
    model = _tiny_vit()
    ema = model_ema(model, decay=0.5, warmup=False)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)
    p0, e0 = next(model.parameters()), next(ema.module.parameters())
    torch.testing.assert_close(e0, p0 - 0.5)


def test_tiny_vit_learns_digits(digits):
    """The real benchmark comes with the trainer; this proves the parts learn together."""
    torch.manual_seed(0)
    x, y = _all(build_data("digits", {"val_fraction": 0.0}).train)
    model = _tiny_vit(label_smoothing=0.1)
    steps = 400
    seconds = fit_on_tensors(model, x, y, steps)
    x_te, y_te = _all(digits.test)
    accuracy = digits.evaluate(model, [{"images": x_te, "labels": y_te}])["accuracy"]
    assert accuracy >= 0.9, f"test accuracy {accuracy:.3f} after {steps} steps ({seconds:.1f} s)"


def test_image_folder_affine_moves_training_images_only(tmp_path):
    """data.args.affine (as digits has it) jitters the training images; evaluation images are untouched."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(tmp_path / split / cls / f"{i}.png")
    args = {"root": str(tmp_path), "image_size": 16, "channels": 1, "val_fraction": 0.5}
    plain, jittered = (build_data("image_folder", {**args, **extra}) for extra in ({}, {"affine": True}))
    torch.manual_seed(0)
    assert not torch.equal(jittered.train[0]["images"], plain.train[0]["images"])
    assert torch.equal(jittered.test[0]["images"], plain.test[0]["images"])
    with pytest.raises(ConfigError, match="affine: unknown key"):
        build_data("image_folder", {**args, "affine": {"spin": 3}})
