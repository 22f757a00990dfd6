"""Training-time regularisers for image classifiers (the DeiT recipe, Touvron et al. 2021), each switchable.

Per image (torchvision.transforms.v2, on (C, H, W) float tensors in [0, 1] or PIL images):
    RandomResizedCrop(scale)  ->  horizontal flip (only where a mirrored image keeps its class:
    not digits)  ->  small affine jitter  ->  RandAugment / TrivialAugmentWide  ->  Normalize
    ->  RandomErasing (after normalising, as timm does). The box is filled with 0: the mean colour on
    normalised data (timm's ``--remode const``), the blank background on digits (not normalised). timm's
    train.py and DeiT default to ``--remode pixel``, per-pixel N(0, 1) noise, so their erasing differs.
Per batch: MixUp (Zhang et al. 2018) / CutMix (Yun et al. 2019) through ``timm.data.Mixup``:
    x~ = lam x_i + (1 - lam) x_j,   y~ = lam y_i + (1 - lam) y_j   (y one-hot, label-smoothed),
    CutMix pastes a box of area (1 - lam) instead of blending. Targets become (B, K) probabilities,
    which the classification head's cross-entropy accepts; leave the head's label_smoothing at 0 then
    (Mixup smooths already).
Weights: an exponential moving average theta_ema <- d theta_ema + (1 - d) theta (timm.utils.ModelEmaV3).

MixUp needs whole batches but must touch training batches only: training items carry
``TRAIN_ITEM`` and :class:`ImageCollate` mixes a batch only when all its items do.
"""
from __future__ import annotations

import warnings

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import default_collate

from ..batch import IMAGES, LABELS
from ..config import ConfigError

TRAIN_ITEM = "train_item"
AUTO_AUGMENTS = ("rand", "trivial")


def _resize(image_size: tuple[int, int]) -> list:
    from torchvision.transforms import v2  # here, not at the top: torchvision costs every command ~1.5 s

    return [v2.Resize(list(image_size), antialias=True)]


def convert_image(image, mode: str, path=None):
    """A PIL image in ``mode`` ("L" or "RGB"). A grey image of more than 8 bits per pixel is brought to 8 bits
    first by :func:`to_8_bits`: PIL's own convert clips it (at 255 for integers, at 0 and 255 for floats),
    turning a 16-bit image nearly all white and a float image in [0, 1] all black. ``path`` names the file in
    errors (default: the image's own ``filename``)."""
    if image.mode in WIDE_GREY_MODES or image.mode.startswith("I;16"):
        image = to_8_bits(image, path)
    if image.mode == "P" and isinstance(image.info.get("transparency"), bytes):
        # the same colours as P -> RGB / L, without PIL's warning (once a worker) that such images go via RGBA
        image = image.convert("RGBA")
    return image.convert(mode)


EIGHT_BITS_IN_I = ("a 32-bit integer image (mode I) holds no value above 255: read as 16-bit, the rule for mode I "
                   "(docs/vision.md), it is nearly black; if the images are 8-bit data (e.g. numpy int32 arrays "
                   "saved as TIFF), save them as 8-bit (uint8, mode L) or multiply them by 256")
WIDE_GREY_MODES = ("I", "F")  # 32-bit integer and 32-bit float grey; I;16, I;16B, ... are 16-bit integer
SIXTEEN_BIT_MAX = 65535


def to_8_bits(image, path=None):
    """A 16-bit, 32-bit integer or 32-bit float grey image as an 8-bit one (mode "L"), by one fixed rule per
    kind, never by the image's own range (that would make a dark and a bright image of the same scene equal):

        integer (modes I;16*, I):  L = floor(v / 256)   for 0 <= v <= 65535   (v >> 8, as torchvision's
                                   ToDtype turns uint16 into uint8; 65535 -> 255)
        float (mode F):            L = round(255 v)     for 0 <= v <= 1       (torchvision's float convention)

    A mode-I image is read as 16-bit because that is what its values nearly always are (older Pillow opened
    every 16-bit PNG as mode I; 12-, 14- and 16-bit cameras write 16-bit words), so a 16-bit PNG gives the same
    pixels whichever of I;16 and I Pillow reports. Values outside the range (a negative or over-16-bit
    integer, a float outside [0, 1], NaN) have no fixed 8-bit value: a one-line ConfigError names the file,
    its mode, its value range and the fix (scale the whole data set by one factor). A mode-I image with no
    value above 255 (8-bit data saved as 32-bit, e.g. a numpy int32 array) reads nearly black by this rule: it
    is read so all the same (a dark 16-bit frame looks alike), with a warning naming the fix."""
    import numpy as np
    from PIL import Image

    values = np.asarray(image)
    name = path or getattr(image, "filename", None)
    # an image held in memory is named "image N" by predict already
    what = "the image" if not name else str(name) if str(name).startswith("image ") else f"image {name}"
    low, high, kind = (0, 1, "32-bit float") if image.mode == "F" else (0, SIXTEEN_BIT_MAX, "integer")
    finite = values[np.isfinite(values)] if image.mode == "F" else values
    if finite.size < values.size:
        raise ConfigError(f"{what} (mode {image.mode}, {kind}) holds NaN or infinite pixels, which have no "
                          f"grey level; fill them (e.g. with 0) and scale the images into [{low}, {high}], or save "
                          "them as 8- or 16-bit PNGs")
    if values.size and not low <= values.min() <= values.max() <= high:
        raise ConfigError(f"{what} (mode {image.mode}, {kind}) holds values {float(values.min()):.6g} to "
                          f"{float(values.max()):.6g}, outside [{low}, {high}] (read as black to white); scale "
                          f"every image of the data set by one factor into [{low}, {high}], or save them as 8- or "
                          "16-bit PNGs")
    if image.mode == "I" and 0 < values.max() <= 255:
        warnings.warn(EIGHT_BITS_IN_I)  # from this line whoever reads: Python shows it once, not once a caller
    if image.mode == "F":
        grey = np.rint(values.astype(np.float64) * 255)
    else:
        grey = values.astype(np.int64) >> 8
    return Image.fromarray(grey.astype(np.uint8))


def to_float_image() -> list:
    """PIL / uint8 / float input -> float32 tensor (C, H, W) in [0, 1]."""
    from torchvision.transforms import v2

    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]


def eval_transform(image_size: Sequence[int], mean: Sequence[float] | None = None,
                   std: Sequence[float] | None = None, resize: bool = True) -> v2.Compose:
    """Deterministic: to float, resize to ``image_size`` (if asked), normalise."""
    from torchvision.transforms import v2

    steps = to_float_image() + (_resize(tuple(image_size)) if resize else [])
    if mean is not None:
        steps.append(v2.Normalize(list(mean), list(std)))
    return v2.Compose(steps)


def shrink_or_stretch(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """(C, H, W) or (N, C, H, W) in [0, 1] to ``size``: a side that shrinks is averaged over the area each output
    pixel covers (scikit-learn made its 8x8 digits so, counting the ink in 4x4 blocks of 32x32 bitmaps; sampling
    every k-th pixel instead would miss a thin stroke), a side that grows is interpolated bilinearly. The digits
    data and ``xformer predict`` on a digits run both resize so, so training and prediction see one image."""
    batch = x if x.dim() == 4 else x[None]
    smaller = [min(have, want) for have, want in zip(batch.shape[-2:], size)]
    if smaller != list(batch.shape[-2:]):
        batch = F.interpolate(batch, size=smaller, mode="area")
    if list(batch.shape[-2:]) != list(size):
        batch = F.interpolate(batch, size=list(size), mode="bilinear", align_corners=False)
    batch = batch.clamp(0, 1)
    return batch if x.dim() == 4 else batch[0]


def train_transform(image_size: Sequence[int], mean: Sequence[float] | None = None,
                    std: Sequence[float] | None = None, *, crop_scale: Sequence[float] | None = None,
                    hflip: float = 0.0, affine: bool | dict = False, auto_augment: str | None = None,
                    magnitude: int = 9, random_erasing: float = 0.0, resize: bool = True) -> v2.Compose:
    """The per-image training pipeline; every step is off unless asked for."""
    from torchvision.transforms import v2

    if auto_augment not in (None, *AUTO_AUGMENTS):
        raise ConfigError(f"unknown auto_augment {auto_augment!r}; choose rand, trivial or null")
    check_crop_scale(crop_scale)
    size = list(image_size)
    steps = to_float_image()
    if crop_scale is not None:
        steps.append(v2.RandomResizedCrop(size, scale=tuple(crop_scale), antialias=True))
    elif resize:
        steps += _resize(tuple(size))
    if hflip > 0:
        steps.append(v2.RandomHorizontalFlip(hflip))
    if affine:  # small shifts/rotations: safe for digits and characters
        steps.append(random_affine(affine))
    if auto_augment == "rand":
        steps.append(v2.RandAugment(magnitude=magnitude))
    elif auto_augment == "trivial":
        steps.append(v2.TrivialAugmentWide())
    if mean is not None:
        steps.append(v2.Normalize(list(mean), list(std)))
    if random_erasing > 0:
        steps.append(v2.RandomErasing(p=random_erasing, value=0))
    return v2.Compose(steps)


def check_crop_scale(crop_scale) -> None:
    """RandomResizedCrop's range of the share of the image's area a crop keeps: [min, max], 0 < min <= max <= 1."""
    if crop_scale is None:
        return
    numbers = isinstance(crop_scale, (list, tuple)) and len(crop_scale) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in crop_scale)
    if not numbers or not 0 < crop_scale[0] <= crop_scale[1] <= 1:
        raise ConfigError(f"data.args.crop_scale must be [min, max] with 0 < min <= max <= 1 (the share of the "
                          f"image's area a random crop keeps), got {crop_scale!r}; e.g. [0.35, 1.0], or null for none")


def check_normalisation(mean, std, channels: int) -> tuple[list[float], list[float]] | tuple[None, None]:
    """``mean`` and ``std`` per channel, as Normalize takes them: both or neither, one number (or one per
    channel) each, every std > 0. One number stands for every channel."""
    if mean is None and std is None:
        return None, None
    if mean is None or std is None:
        raise ConfigError("give data.args.mean and data.args.std together (one number per channel each), or "
                          "neither (the usual statistics are used)")
    values = {}
    for key, value in (("mean", mean), ("std", std)):
        value = list(value) if isinstance(value, (list, tuple)) else [value]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) or \
                len(value) not in (1, channels):
            raise ConfigError(f"data.args.{key} must be one number or {channels} (one per channel of the "
                              f"{channels}-channel images), got {value!r}")
        values[key] = [float(v) for v in value] * (channels if len(value) == 1 else 1)
    if min(values["std"]) <= 0:
        raise ConfigError(f"data.args.std must be > 0 for every channel, got {std!r}")
    return values["mean"], values["std"]


AFFINE = {"degrees": 10, "translate": (0.1, 0.1), "scale": (0.9, 1.1), "shear": None, "interpolation": "nearest"}


def random_affine(affine: bool | dict) -> v2.RandomAffine:
    """``True``: rotations up to 10 degrees, shifts up to 10% of the size, scale 0.9-1.1, nearest pixel.
    A mapping overrides some of these (keys of ``AFFINE``), e.g. ``{degrees: 0, scale: null}`` for shifts
    only. torchvision rounds shifts to whole pixels (up to round(0.1 x 8) = 1 pixel on 8x8 digits);
    ``interpolation`` matters for rotations and scaling."""
    from torchvision.transforms import v2

    args = dict(AFFINE)
    if isinstance(affine, dict):
        unknown = sorted(set(affine) - set(AFFINE))
        if unknown:
            raise ConfigError(f"affine: unknown key(s) {', '.join(unknown)}; choose from {', '.join(AFFINE)}")
        args.update(affine)
    modes = {"nearest": v2.InterpolationMode.NEAREST, "bilinear": v2.InterpolationMode.BILINEAR}
    if args["interpolation"] not in modes:
        raise ConfigError(f"affine.interpolation must be nearest or bilinear, got {args['interpolation']!r}")
    pair = (lambda v: tuple(v) if v is not None else None)
    return v2.RandomAffine(degrees=args["degrees"], translate=pair(args["translate"]), scale=pair(args["scale"]),
                           shear=args["shear"], interpolation=modes[args["interpolation"]])


def make_mixup(n_classes: int, mixup: float = 0.0, cutmix: float = 0.0, label_smoothing: float = 0.0,
               prob: float = 1.0, switch_prob: float = 0.5):
    """timm's Mixup (alpha > 0 turns each on), or None when both are off."""
    if mixup <= 0 and cutmix <= 0:
        return None
    from timm.data import Mixup

    return Mixup(mixup_alpha=mixup, cutmix_alpha=cutmix, prob=prob, switch_prob=switch_prob,
                 label_smoothing=label_smoothing, num_classes=n_classes)


class ImageCollate:
    """Stack items into {"images": (B, C, H, W), "labels": (B,)}; MixUp/CutMix training batches.

    A training batch of odd size is left unmixed (timm's batch mode mixes pairs x_i, x_{B-1-i}); training
    refuses micro-batches of odd size with MixUp/CutMix (xformer/train/run_checks.py), as every batch would be.
    """

    def __init__(self, mixup=None):
        self.mixup = mixup

    def __call__(self, items: list[dict]) -> dict:
        train = all(item.get(TRAIN_ITEM, False) for item in items)
        batch = default_collate([{k: v for k, v in item.items() if k != TRAIN_ITEM} for item in items])
        if train and self.mixup is not None and len(items) % 2 == 0:
            batch[IMAGES], batch[LABELS] = self.mixup(batch[IMAGES], batch[LABELS])
        return batch


def model_ema(model: nn.Module, decay: float = 0.9998, warmup: bool = True):
    """An EMA copy of ``model`` (timm.utils.ModelEmaV3): call ``ema.update(model, step)`` after each
    optimiser step and evaluate ``ema.module``. With warmup the decay ramps up over the first steps."""
    from timm.utils import ModelEmaV3

    return ModelEmaV3(model, decay=decay, use_warmup=warmup)


__all__ = ["train_transform", "random_affine", "AFFINE", "eval_transform", "make_mixup", "ImageCollate", "model_ema",
           "TRAIN_ITEM"]
