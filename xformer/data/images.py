"""Image classification datasets: digits (bundled with scikit-learn), image folders, MNIST, Fashion-MNIST, CIFAR-10.

Every item is {"images": (C, H, W) float, "labels": long}; every bundle's
``model_args`` fill ``tokenizer.args.image_size/channels`` and ``head.args.n_classes``,
and its ``evaluate`` returns {"accuracy": ...}. Nothing is downloaded: torchvision
readers run with download=False, and a missing file ends with one line naming
the path expected.

Splits:
- digits: the fixed stratified 80/20 split ``train_test_split(stratify=y, test_size=0.2,
  random_state=0)`` -> 1437 / 360 images; ``val_fraction`` of the 1437 is carved out for
  validation (stratified, random_state=0), so the 360 test images are never looked at.
- MNIST, Fashion-MNIST, CIFAR-10: the official train/test files; validation is a
  stratified ``val_fraction`` of train (random_state=0).
- image_folder: ``root/train/<class>/*``, ``root/val/<class>/*`` if present (else carved from
  train) and ``root/test/<class>/*`` if present (else the bundle has no test split and the run's
  metrics are val only). Its val and test items are in a fixed seeded order (a permutation drawn once,
  seed 0) rather than the folder's class-sorted one, so that ``train.eval_batches`` scores a sample of
  every class; metrics over a whole split are the same in any order.

The run folder gets ``classes.json`` (the class names) and ``preprocess.json`` (the evaluation
transform: image size, channels, mean/std or null, and the resize mode), which ``xformer predict``
and ``xformer attention --image`` read back to treat new image files exactly as the run's own
evaluation images were.
"""
from __future__ import annotations

import json
import math
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from ..batch import IMAGES, LABELS
from ..errors import ConfigError
from ..metrics_classification import evaluate_classifier, save_classification_report
from ..registry import check_fractions, check_sizes
from .image_augment import (TRAIN_ITEM, ImageCollate, check_normalisation, eval_transform, make_mixup,
                            shrink_or_stretch, train_transform)
from .image_files import IMAGE_ERRORS, check_image_headers, image_class_folder, open_image  # noqa: F401
from .image_files import split_folders
from .image_files import open_image as _open  # noqa: F401  (IMAGE_ERRORS and _open: importable here as before)
from .registry import DataBundle, register_data

STATS = {  # per-channel mean and std of the training images (the usual published values)
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


class ImageItems(Dataset):
    """Images from ``source`` (a tensor (N, C, H, W) or a dataset of (image, label) pairs), through ``transform``.
    ``plain``: the evaluation transform of the same images (training items: ``unaugmented`` shows one as
    the model sees it in evaluation, without the random augmentation)."""

    def __init__(self, source, labels=None, transform=None, train: bool = False, plain=None):
        self.source, self.labels, self.transform, self.train = source, labels, transform, train
        self.plain = plain if train else transform

    def unaugmented(self, i: int) -> dict:
        """Item ``i`` through the evaluation transform instead of the training augmentation."""
        augmenting, self.transform = self.transform, self.plain
        try:
            item = self[i]
        finally:
            self.transform = augmenting
        item.pop(TRAIN_ITEM, None)
        return item

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> dict:
        if self.labels is not None:
            image, label = self.source[i], self.labels[i]
        else:
            image, label = self.source[i]
        if self.transform is not None:
            image = self.transform(image)
        item = {IMAGES: image, LABELS: torch.as_tensor(int(label))}
        if self.train:
            item[TRAIN_ITEM] = True
        return item


def _split(targets, fraction: float, seed: int = 0, names=None) -> tuple[list[int], list[int]]:
    """Stratified (keep, held_out) indices; held_out is ``fraction`` of them. A split that cannot hold every
    class on both sides (``names``: the class names, for the error) is a one-line error naming the fix."""
    idx = list(range(len(targets)))
    if fraction <= 0:
        return idx, []
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 32:
        raise ConfigError(f"data.args.val_seed must be a whole number in [0, 2**32), got {seed!r}")
    labels = [int(t) for t in targets]
    counts = torch.bincount(torch.tensor(labels))
    n_classes, held = int((counts > 0).sum()), math.ceil(fraction * len(labels))
    if counts[counts > 0].min() < 2:
        k = int(torch.nonzero(counts == 1)[0])
        raise ConfigError(f"class {names[k] if names else k} has one training image, too few to keep one for "
                          "validation; add images to that class, or a val/ folder (image_folder) with images of "
                          "every class")
    if held < n_classes or len(labels) - held < n_classes:
        raise ConfigError(f"data.args.val_fraction={fraction} of {len(labels)} training images holds {held} for "
                          f"validation, fewer than the {n_classes} classes: raise data.args.val_fraction to at least "
                          f"{n_classes / len(labels):.2g}, or add a val/ folder (image_folder)")
    from sklearn.model_selection import train_test_split  # here, not at the top: sklearn costs every command ~1 s
    keep, held = train_test_split(idx, test_size=fraction, stratify=labels, random_state=seed)
    return sorted(keep), sorted(held)


PREPROCESS_FILE = "preprocess.json"


def preprocess_spec(image_size, channels: int, mean=None, std=None, resize: str = "antialias",
                    source_size=None) -> dict:
    """What the evaluation transform does to a raw image, as JSON (saved as RUN_DIR/preprocess.json):
    convert to ``channels`` (1: grey "L", 3: "RGB"), scale to [0, 1], resize to ``image_size`` (H, W) with
    ``resize`` ("antialias": torchvision's Resize; "bilinear": ``shrink_or_stretch`` as the digits data resizes,
    averaging a side that shrinks and interpolating one that grows, from ``source_size`` when the data's images
    have one, as digits' 8x8), then (x - mean) / std per channel when
    mean is not null."""
    spec = {"image_size": [int(v) for v in image_size], "channels": int(channels),
            "mean": None if mean is None else [float(v) for v in mean],
            "std": None if std is None else [float(v) for v in std], "resize": resize}
    if source_size is not None:
        spec["source_size"] = [int(v) for v in source_size]
    return spec


def default_preprocess(name: str, args: dict, image_size=None, channels: int | None = None) -> dict | None:
    """The evaluation transform of a run that predates preprocess.json, from its data config (name, args)
    and the image size / channels its tokenizer was built for; None when ``name`` is no image dataset."""
    def size_of(default: int) -> tuple[int, int]:  # data.args.image_size: one size or [height, width]
        size = args.get("image_size") or default
        return tuple(size) if isinstance(size, (list, tuple)) else (int(size), int(size))

    if name == "digits":
        return preprocess_spec(size_of(8), 1, resize="bilinear", source_size=(8, 8))
    if name in ("mnist", "fashion_mnist", "cifar10"):
        native, ch = (32, 3) if name == "cifar10" else (28, 1)
        return preprocess_spec(image_size or size_of(native), ch, *STATS[name])
    if name == "image_folder":
        ch = int(args.get("channels", channels or 3))
        mean, std = check_normalisation(args.get("mean"), args.get("std"), ch)  # one number: every channel's
        if mean is None:
            mean, std = STATS["imagenet"] if ch == 3 else ((0.5,), (0.5,))
        return preprocess_spec(image_size or size_of(224), ch, mean, std)
    return None


def _seeded_order(dataset, seed: int = 0):
    """``dataset`` in a fixed random order (drawn once from ``seed``), so that the first batches of an
    evaluation hold every class in proportion rather than the first class of a sorted folder."""
    if dataset is None or len(dataset) == 0:
        return dataset
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    return Subset(dataset, order)


def _bundle(train, val, test, n_classes: int, image_size, channels: int, mixup, class_names=None,
            preprocess: dict | None = None) -> DataBundle:
    names = list(class_names) if class_names is not None else [str(k) for k in range(n_classes)]
    spec = preprocess or preprocess_spec(image_size, channels)

    def save(run_dir: Path) -> None:
        Path(run_dir, "classes.json").write_text(json.dumps({"class_names": names}), encoding="utf-8")
        Path(run_dir, PREPROCESS_FILE).write_text(json.dumps(spec, indent=1), encoding="utf-8")

    def report(model, batches, run_dir: Path, split: str = "test") -> dict:
        return save_classification_report(run_dir, model, batches, n_classes, names, split)

    return DataBundle(
        train=train, val=val, test=test, collate=ImageCollate(mixup),
        model_args={"tokenizer": {"image_size": list(image_size), "channels": channels},
                    "head": {"n_classes": n_classes}},
        evaluate=evaluate_classifier, save=save, report=report,
    )


def _check_image_args(label_smoothing: float, mixup: float, cutmix: float, image_size: int | None = None,
                      val_fraction: float = 0.0, hflip: float = 0.0, random_erasing: float = 0.0) -> None:
    """The arguments every image dataset shares, checked before any image is read."""
    check_sizes("data.args", image_size=image_size)
    check_fractions("data.args", val_fraction=val_fraction, label_smoothing=label_smoothing)
    check_fractions("data.args", include_one=True, hflip=hflip, random_erasing=random_erasing)
    if mixup < 0 or cutmix < 0:  # Beta(alpha, alpha) parameters
        raise ConfigError(f"data.args.mixup and data.args.cutmix must be >= 0 (0 turns one off), got {mixup} "
                          f"and {cutmix}")
    if label_smoothing and not (mixup or cutmix):
        raise ConfigError("data.args.label_smoothing applies to MixUp/CutMix targets; without them set "
                         "head.args.label_smoothing (a baseline: model.baseline.args.label_smoothing) instead")


def _image_pair(image_size, default: int) -> tuple[int, int]:
    """data.args.image_size as (height, width): one size (square) or [height, width]; ``default`` when None."""
    size = tuple(image_size) if isinstance(image_size, (list, tuple)) else (image_size or default,) * 2
    if len(size) != 2:
        raise ConfigError(f"data.args.image_size must be one size or [height, width], got {image_size!r}")
    return int(size[0]), int(size[1])


@register_data("digits")
def digits(image_size: int | list[int] = 8, val_fraction: float = 0.1, affine: bool | dict = False,
           random_erasing: float = 0.0, mixup: float = 0.0, cutmix: float = 0.0, label_smoothing: float = 0.0,
           val_seed: int = 0) -> DataBundle:
    """scikit-learn's 8x8 handwritten digits (1797 images, 16 grey levels, scaled to [0, 1]).

    ``image_size`` (one size or [height, width]) > 8 upsamples bilinearly (e.g. 16 for patch size 4 on a 4x4
    grid), < 8 averages areas. No flips: a mirrored 2 is not a 2. ``affine`` adds small shifts/rotations
    (``true``, or a mapping
    of :data:`~xformer.data.image_augment.AFFINE` keys). ``val_seed``: the random_state of the
    stratified train/val carve-out (other seeds give other validation folds of the same 1437
    images, for tuning on more than 144 images; the test split never moves).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    _check_image_args(label_smoothing, mixup, cutmix, image_size, val_fraction, random_erasing=random_erasing)
    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (1797, 1, 8, 8)
    size = _image_pair(image_size, 8)
    if size != (8, 8):  # as predict brings a user's file from 8x8 (a smaller size averages, not samples)
        images = shrink_or_stretch(images, size)
    labels = torch.tensor(data.target, dtype=torch.long)
    train_idx, test_idx = train_test_split(list(range(len(labels))), test_size=0.2, stratify=data.target,
                                           random_state=0)
    keep, held = _split(labels[train_idx].tolist(), val_fraction, val_seed)
    train_idx, val_idx = [train_idx[i] for i in keep], [train_idx[i] for i in held]
    aug = train_transform(size, affine=affine, random_erasing=random_erasing, resize=False) \
        if affine or random_erasing else None

    def part(idx, transform=None, train=False):
        return ImageItems(images[idx], labels[idx], transform, train)

    return _bundle(part(train_idx, aug, train=True), part(val_idx) if val_idx else None, part(test_idx), 10,
                   size, 1, make_mixup(10, mixup, cutmix, label_smoothing),
                   preprocess=preprocess_spec(size, 1, resize="bilinear", source_size=(8, 8)))


def _torchvision(name: str, reader, root: str, expected: str, image_size: int | None, native: int, channels: int,
                 val_fraction: float, aug: dict, mixup_args: tuple) -> DataBundle:
    """Shared body of the torchvision-file datasets (download=False, clear error when absent)."""
    try:
        train_src = reader(root, train=True, download=False)
        test_src = reader(root, train=False, download=False)
    except RuntimeError:
        raise ConfigError(f"{name} files not found: expected {Path(root) / expected}; place the official files "
                          f"there or set data.args.root") from None
    size = _image_pair(image_size, native)
    mean, std = STATS[name]
    resize = size != (native, native)
    keep, held = _split(train_src.targets, val_fraction)
    plain = eval_transform(size, mean, std, resize=resize)
    train = ImageItems(Subset(train_src, keep), transform=train_transform(size, mean, std, resize=resize, **aug),
                       train=True, plain=plain)
    val = ImageItems(Subset(train_src, held), transform=plain) if held else None
    test = ImageItems(test_src, transform=plain)
    n_classes = len(train_src.classes)
    return _bundle(train, val, test, n_classes, size, channels, make_mixup(n_classes, *mixup_args),
                   train_src.classes, preprocess_spec(size, channels, mean, std))


@register_data("mnist")
def mnist(root: str = "data", image_size: int | None = None, val_fraction: float = 0.1,
          affine: bool | dict = False, random_erasing: float = 0.0, mixup: float = 0.0, cutmix: float = 0.0,
          label_smoothing: float = 0.0) -> DataBundle:
    """MNIST from ``root/MNIST/raw`` (torchvision's layout). No flips (digits)."""
    from torchvision.datasets import MNIST

    _check_image_args(label_smoothing, mixup, cutmix, image_size, val_fraction, random_erasing=random_erasing)
    return _torchvision("mnist", MNIST, root, "MNIST/raw/train-images-idx3-ubyte", image_size, 28, 1,
                        val_fraction, {"affine": affine, "random_erasing": random_erasing},
                        (mixup, cutmix, label_smoothing))


@register_data("fashion_mnist")
def fashion_mnist(root: str = "data", image_size: int | None = None, val_fraction: float = 0.1,
                  hflip: float = 0.0, random_erasing: float = 0.0, mixup: float = 0.0, cutmix: float = 0.0,
                  label_smoothing: float = 0.0) -> DataBundle:
    """Fashion-MNIST from ``root/FashionMNIST/raw`` (mirrored clothes keep their class: hflip allowed)."""
    from torchvision.datasets import FashionMNIST

    _check_image_args(label_smoothing, mixup, cutmix, image_size, val_fraction, hflip, random_erasing)
    return _torchvision("fashion_mnist", FashionMNIST, root, "FashionMNIST/raw/train-images-idx3-ubyte",
                        image_size, 28, 1, val_fraction, {"hflip": hflip, "random_erasing": random_erasing},
                        (mixup, cutmix, label_smoothing))


@register_data("cifar10")
def cifar10(root: str = "data", image_size: int | None = None, val_fraction: float = 0.1,
            crop_scale: list[float] | None = None, hflip: float = 0.5, auto_augment: str | None = None,
            random_erasing: float = 0.0, mixup: float = 0.0, cutmix: float = 0.0,
            label_smoothing: float = 0.0) -> DataBundle:
    """CIFAR-10 from ``root/cifar-10-batches-py`` (the python version of the official archive)."""
    from torchvision.datasets import CIFAR10

    _check_image_args(label_smoothing, mixup, cutmix, image_size, val_fraction, hflip, random_erasing)
    aug = {"crop_scale": crop_scale, "hflip": hflip, "auto_augment": auto_augment, "random_erasing": random_erasing}
    return _torchvision("cifar10", CIFAR10, root, "cifar-10-batches-py", image_size, 32, 3, val_fraction, aug,
                        (mixup, cutmix, label_smoothing))


@register_data("image_folder")
def image_folder(root: str, image_size: int = 224, channels: int = 3, val_fraction: float = 0.1,
                 crop_scale: list[float] | None = None, hflip: float = 0.0, auto_augment: str | None = None,
                 random_erasing: float = 0.0, mixup: float = 0.0, cutmix: float = 0.0,
                 label_smoothing: float = 0.0, mean: list[float] | None = None,
                 std: list[float] | None = None, affine: bool | dict = False) -> DataBundle:
    """``root/train/<class name>/<image>``, ``root/val/...`` (optional: else ``val_fraction`` of train)
    and ``root/test/...`` (optional: without it the run has no test split and its metrics are val only),
    through torchvision's ImageFolder. A folder of val/ and/or test/ only is data to evaluate a run on
    (``xformer evaluate RUN data.args.root=...``), and so is one of class folders alone (``root/<class>/...``, the
    folder timm's validate.py reads), as its test split; training refuses them.

    Images stay on disk: the folder is listed once, and each item is opened, decoded and transformed in
    ``__getitem__`` (in DataLoader worker processes with ``train.num_workers`` > 0; the dataset pickles
    as paths), so a folder of any size trains with flat memory. ``data/image_folder/prepare.py`` lays a
    folder of class sub-folders out as train/val[/test] and writes classes.json.

    Images of any size are converted to RGB (channels=3) or L (channels=1), resized to ``image_size``
    and normalised with ImageNet statistics (0.5/0.5 for grey) unless ``mean``/``std`` are given.
    ``affine``: small random shifts/rotations of training images, as ``digits`` has (for digits and
    characters, where flips are wrong; ``true`` or a mapping of ``image_augment.AFFINE``).
    The val and test items come in a fixed seeded order (see the module docstring), so that
    ``train.eval_batches`` samples every class.

    An unreadable image stops the run with one line naming the file, never skips it silently:
    building the bundle opens every image's header (cheap: no pixels are decoded) and refuses
    the first that PIL cannot identify; an image whose pixels fail to decode later (e.g. a
    truncated file) stops training with the same line, ``cannot read image PATH (...); remove or
    replace it``.
    """
    _check_image_args(label_smoothing, mixup, cutmix, image_size, val_fraction, hflip, random_erasing)
    root_path = Path(root)
    if not root_path.is_dir():
        problem = "is a file" if root_path.exists() else "does not exist"
        raise ConfigError(f"image_folder: data.args.root {root_path} {problem}; give the folder that holds train/ "
                          "(and val/, test/), one sub-folder per class")
    splits = split_folders(root_path)
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise ConfigError(f"image_folder: channels must be 1 or 3, got {channels}")
    mean, std = check_normalisation(mean, std, channels)
    if mean is None:
        mean, std = STATS["imagenet"] if channels == 3 else ((0.5,), (0.5,))
    size = _image_pair(image_size, 224)

    def folder(split: str):  # val/ and test/ may lack a class (an empty folder keeps it in the class list)
        return image_class_folder(splits[split], partial(open_image, mode=mode), allow_empty=split != "train") \
            if split in splits else None

    train_src, val_src, test_src = folder("train"), folder("val"), folder("test")
    # without train/ (a folder to evaluate a run on: val/ and test/ only) the first split there names the classes
    first, classes = next((name, src.classes) for name, src in (("train", train_src), ("val", val_src),
                                                                ("test", test_src)) if src is not None)
    if len(classes) < 2:
        raise ConfigError(f"image_folder: {root_path / first} holds one class ({classes[0]}); a classifier needs "
                          "at least two class folders")
    for split, source in (("val", val_src), ("test", test_src)):
        if source is not None and source.classes != classes:
            extra = sorted(set(source.classes) - set(classes))
            lacking = sorted(set(classes) - set(source.classes))
            raise ConfigError(f"image_folder: {split} classes differ from {first}'s ({len(classes)}):"
                              f"{f' {extra} not in {first}' if extra else ''}{';' if extra and lacking else ''}"
                              f"{f' {lacking} missing' if lacking else ''}; give {root_path / split} the same "
                              f"class folders as {first} (empty for a class it has no images of)")
    for source in (train_src, val_src, test_src):
        if source is not None:
            check_image_headers(path for path, _ in source.samples)
    aug = train_transform(size, mean, std, crop_scale=crop_scale, hflip=hflip, auto_augment=auto_augment,
                          random_erasing=random_erasing, affine=affine)
    plain = eval_transform(size, mean, std)
    if train_src is None:
        train, val = None, ImageItems(_seeded_order(val_src), transform=plain) if val_src is not None else None
    elif val_src is not None:
        train = ImageItems(train_src, transform=aug, train=True, plain=plain)
        val = ImageItems(_seeded_order(val_src), transform=plain)
    else:
        keep, held = _split(train_src.targets, val_fraction, names=train_src.classes)
        train = ImageItems(Subset(train_src, keep), transform=aug, train=True, plain=plain)
        val = ImageItems(_seeded_order(Subset(train_src, held)), transform=plain) if held else None
    test = ImageItems(_seeded_order(test_src), transform=plain) if test_src is not None else None
    if val is None and test is None:
        raise ConfigError(f"image_folder: {root_path} has neither val/ nor test/ and val_fraction is 0; add a "
                          "val/ folder or set data.args.val_fraction above 0")
    n_classes = len(classes)
    bundle = _bundle(train, val, test, n_classes, size, channels, make_mixup(n_classes, mixup, cutmix, label_smoothing),
                     classes, preprocess_spec(size, channels, mean, std))
    return bundle


__all__ = ["PREPROCESS_FILE", "preprocess_spec", "default_preprocess", "ImageItems", "digits", "mnist",
           "fashion_mnist", "cifar10", "image_folder", "STATS"]
