"""Which files of a folder are images, and reading them: one list shared by training (``image_folder``) and
``xformer predict``, so that a file one of them reads the other reads too.

An image is a file whose suffix is in ``IMAGE_SUFFIXES`` (case-insensitive) and whose path below the folder
searched has no hidden part: a name starting with "." (``.ipynb_checkpoints/``, ``.DS_Store``, an editor's
``.x.png.swp``) is never a class and never an image, as tools leave such entries beside the data unasked.

Links are followed, as torchvision's ImageFolder follows them (a linked file is one image, a linked folder's
images count as if they lay there), except where that cannot be what the user meant, which is refused in one
line naming the link: a link to a folder that holds it (a loop: its images would be read again and again, some
landing in validation beside their training copies) and a link to nothing (an unmounted drive's class would be
dropped without a word).

PIL refuses an image of more than 2 x ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (178,956,970 by default) as a
possible decompression bomb: one line says it is too large and to downscale it. Between the limit and twice it
PIL only warns; xformer reads such an image without the warning (the user's own data, resized anyway).
"""
from __future__ import annotations

import os
import re
import warnings
from functools import partial
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError, UserError
from ..registry import first_line

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

# what PIL raises for a file it cannot read: OSError (UnidentifiedImageError, truncated data), ValueError
# (an unsupported mode conversion), DecompressionBombError (a suspiciously large image)
IMAGE_ERRORS = (OSError, ValueError, Image.DecompressionBombError)


def is_hidden(path: str | Path, below: str | Path) -> bool:
    """Whether a part of ``path`` under the folder ``below`` starts with "." (the folder's own name may)."""
    return any(part.startswith(".") for part in Path(path).relative_to(below).parts)


def is_image_file(path: str | Path, below: str | Path) -> bool:
    """An image suffix and no hidden part under ``below`` (ImageFolder's ``is_valid_file``)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES and not is_hidden(path, below)


def images_under(folder: str | Path) -> list[Path]:
    """The image files inside ``folder`` and its sub-folders (links followed, loops refused), sorted."""
    return sorted(Path(root, name) for root, _, names in walk_folder(folder) for name in names
                  if is_image_file(Path(root, name), folder))


def walk_folder(folder: str | Path):
    """(root, folder names, other names) of ``folder`` and every folder below it, top-down, as ``os.walk(folder,
    followlinks=True)`` gives them (which torchvision's ImageFolder walks), but a link to a folder that holds it
    and a link to nothing (outside hidden folders) are one-line ConfigErrors naming the link. Unreadable folders
    are skipped, as os.walk skips them."""
    real = os.path.realpath(folder)
    yield from _walk(str(folder), real, frozenset({real}), False)


def _walk(root: str, real_root: str, chain: frozenset, hidden: bool):
    """``chain``: the real paths of ``root`` and the folders above it, which no link below may lead back to."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return
    folders, others, below = [], [], []
    for entry in entries:
        if entry.is_dir():
            real = os.path.realpath(entry.path) if entry.is_symlink() else os.path.join(real_root, entry.name)
            if real in chain:
                raise ConfigError(f"{entry.path} is a link to {real}, a folder that holds it: a loop, which would "
                                  "read its images again and again; remove the link (or point it elsewhere)")
            folders.append(entry.name)
            below.append((entry.path, real, chain | {real}, hidden or entry.name.startswith(".")))
        else:
            if not (hidden or entry.name.startswith(".")):
                check_link_target(entry)
            others.append(entry.name)
    yield root, folders, others
    for sub in below:
        yield from _walk(*sub)


def check_link_target(entry: os.DirEntry) -> None:
    """A link whose target does not exist (``entry`` of os.scandir) is a one-line ConfigError naming both."""
    if entry.is_symlink() and not os.path.exists(entry.path):
        raise ConfigError(f"{entry.path} is a link to {os.readlink(entry.path)}, which does not exist; mount it or "
                          "remove the link")


def loose_images(folder: str | Path) -> list[Path]:
    """Image files lying directly in ``folder`` (a split folder's images belong in its class folders)."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and is_image_file(p, folder))


def split_folders(root: Path) -> dict[str, Path]:
    """{split: folder} of an image folder: root/train, root/val and root/test where they are, or, with none of them,
    root itself as the test split when it holds class folders (timm validate.py's folder: data to evaluate on)."""
    splits = {split: root / split for split in ("train", "val", "test") if (root / split).is_dir()}
    if splits:
        return splits
    if not any(e.is_dir() and not e.name.startswith(".") for e in os.scandir(root)):
        raise ConfigError(f"image_folder: {root} holds no train/, val/ or test/ folder; expected {root / 'train'} "
                          "with one sub-folder per class (class folders alone are data to evaluate a run on)")
    return {"test": root}


def image_class_folder(split_dir: str | Path, loader, allow_empty: bool = False):
    """torchvision's ImageFolder over ``split_dir``/<class>/**/<image>, with ``IMAGE_SUFFIXES`` and without
    hidden folders or files. A one-line ConfigError names what is missing: class folders, images in a class
    folder (unless ``allow_empty``: an evaluation split may lack a class, whose empty folder keeps the class
    list), or images left beside the class folders (which ImageFolder would skip silently); another, a link to
    a folder that holds it or to nothing (``walk_folder``)."""
    split_dir = Path(split_dir)
    for _ in walk_folder(split_dir):  # a loop or a link to nothing, refused before ImageFolder walks (or skips) it
        pass
    if not any(e.is_dir() and not e.name.startswith(".") for e in os.scandir(split_dir)):
        raise ConfigError(f"image_folder: {split_dir} holds no class folders; put each class's images in a "
                          f"sub-folder named after the class ({split_dir}/CLASS/*.png)")
    loose = loose_images(split_dir)
    if loose:
        shown = ", ".join(p.name for p in loose[:3]) + (f" and {len(loose) - 3} more" if len(loose) > 3 else "")
        raise ConfigError(f"image_folder: {split_dir} holds {len(loose)} image(s) beside its class folders "
                          f"({shown}), which belong to no class; move each into its class folder "
                          f"({split_dir}/CLASS/) or out of {split_dir}")
    try:
        folder = _visible_image_folder()(str(split_dir), loader=loader, allow_empty=allow_empty,
                                    is_valid_file=partial(is_image_file, below=str(split_dir)))
    except FileNotFoundError as e:  # a class folder without images
        raise ConfigError(f"image_folder: {split_dir}: {str(e).strip()} Image files end in "
                          f"{', '.join(IMAGE_SUFFIXES)}; give each class folder at least one image, or remove the "
                          "empty ones") from None
    if not folder.samples:
        raise ConfigError(f"image_folder: {split_dir} holds no images in its class folders; give it images, or "
                          "remove the split")
    return folder


_VISIBLE = {}


def _visible_image_folder():
    """ImageFolder whose classes are the folders not starting with "." (built on first use: torchvision costs every
    command ~1.5 s to import; ``__getattr__`` below finds it by name, so datasets pickle for loader workers)."""
    if not _VISIBLE:
        from torchvision.datasets import ImageFolder

        class VisibleImageFolder(ImageFolder):
            def find_classes(self, directory):
                classes = sorted(e.name for e in os.scandir(directory) if e.is_dir() and not e.name.startswith("."))
                for name in classes:
                    check_utf8_class(directory, name)
                return classes, {name: k for k, name in enumerate(classes)}

        VisibleImageFolder.__module__, VisibleImageFolder.__qualname__ = __name__, "VisibleImageFolder"
        _VISIBLE["class"] = VisibleImageFolder
    return _VISIBLE["class"]


def check_utf8_class(split_dir, name: str) -> None:
    """A class folder's name is the class's name in classes.json, predict's CSV and the plots, all text: one whose
    bytes are not UTF-8 (latin-1 from an old zip archive, unpacked on Linux) is refused in one line."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"image_folder: class folder {ascii(os.path.join(split_dir, name))} has a name that is not "
                          f"UTF-8 (bytes {os.fsencode(name)!r}, e.g. latin-1 from an old zip archive), and the class "
                          "name is written as text; rename it in UTF-8 (convmv -f latin1 -t utf8 -r --notest FOLDER "
                          "renames a tree)") from None


def __getattr__(name: str):
    if name == "VisibleImageFolder":
        return _visible_image_folder()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_image_headers(paths) -> None:
    """Open each image's header (no pixels decoded) so that a file PIL cannot identify stops the run
    before training, in one line naming it; a 32-bit grey image (mode I or F) is decoded too, as only its
    values tell whether it has an 8-bit reading (``image_augment.to_8_bits``)."""
    from .image_augment import WIDE_GREY_MODES, to_8_bits

    for path in paths:
        try:
            with open_quietly(path) as im:
                if im.mode in WIDE_GREY_MODES:
                    to_8_bits(im, path)
        except ConfigError:
            raise
        except IMAGE_ERRORS as e:
            raise unreadable_image(path, e) from None


def open_quietly(path: str | Path):
    """``PIL.Image.open(path)`` without PIL's DecompressionBombWarning for an image of between
    ``Image.MAX_IMAGE_PIXELS`` and twice as many pixels: it is the user's own data, resized to the model's
    image size anyway, and training would repeat the warning every epoch. Beyond twice PIL still refuses it
    (``too_large_image`` says so). The filter is added once, not around each read: ``warnings.catch_warnings``
    per image reset Python's record of the warnings already shown, so any other (PIL's about a file, the 8-bit
    note of ``to_8_bits``) came again at every read of every image."""
    if BOMB_FILTER not in warnings.filters:  # checked each time: a caller's catch_warnings may have removed it
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    return Image.open(path)


BOMB_FILTER = ("ignore", None, Image.DecompressionBombWarning, None, 0)


def open_image(path: str, mode: str):
    """ImageFolder's loader: an image that fails to decode mid-training is a one-line user error."""
    from .image_augment import convert_image

    try:
        with open_quietly(path) as im:
            return convert_image(im, mode, path)
    except ConfigError:
        raise
    except IMAGE_ERRORS as e:
        raise unreadable_image(path, e) from None


def unreadable_image(path, error: Exception) -> UserError:
    if isinstance(error, Image.DecompressionBombError):
        return UserError(too_large_image(path, error))
    # PIL's own message for a file it cannot identify repeats the path
    reason = "cannot identify image file" if isinstance(error, UnidentifiedImageError) else first_line(error)
    return UserError(f"cannot read image {path} ({reason}); remove or replace it")


def too_large_image(path, error: Exception) -> str:
    """The one line for an image PIL refuses as a possible decompression bomb (the same in training, evaluate
    and predict): its size, PIL's limit and the fix."""
    pixels = re.search(r"\((\d+) pixels\)", str(error))  # PIL's message is the only place that holds the size
    size = f"{int(pixels.group(1)):,} pixels" if pixels else first_line(error)
    limit = f"{2 * Image.MAX_IMAGE_PIXELS:,}" if Image.MAX_IMAGE_PIXELS else "its limit"
    return (f"image {path} is too large ({size}; PIL reads at most {limit}, 2 x PIL.Image.MAX_IMAGE_PIXELS, "
            "against decompression bombs); downscale it (it is resized to the model's image size anyway), or, "
            "if you trust the file, raise PIL.Image.MAX_IMAGE_PIXELS in Python before reading it")


def is_in_memory(image) -> bool:
    """Whether ``image`` is a picture held in memory (a PIL image, a numpy array or a torch tensor), not a path."""
    import numpy as np
    import torch

    return isinstance(image, (Image.Image, np.ndarray, torch.Tensor))


def pil_image(image, name: str):
    """A PIL image of an in-memory one, by torchvision's conventions: a numpy array is (H, W) or (H, W, C), a torch
    tensor (H, W) or (C, H, W) (C = 1, 3 or 4); uint8 is 0-255, uint16 (v >> 8) and bool as files of those depths, and
    float is [0, 1], brought to 8 bits as a saved file would be (round(255 v), as a mode-F grey file:
    ``image_augment.to_8_bits``). Another array is refused in one line naming the fix."""
    import numpy as np

    if isinstance(image, Image.Image):
        return image
    if not isinstance(image, np.ndarray):  # a torch tensor
        image = _tensor_pixels(image, name)
    array = image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
    if np.issubdtype(array.dtype, np.floating) and array.ndim in (2, 3):
        array = _float_pixels(array, name)
    elif array.dtype == np.uint16 and array.ndim == 3:  # 16-bit colour, as PIL reads a 48-bit PNG: v >> 8
        array = (array >> 8).astype(np.uint8)
    try:
        return Image.fromarray(array)
    except (TypeError, ValueError, KeyError):
        channels_first = image.ndim == 3 and image.shape[0] in (1, 3, 4) and image.shape[2] not in (1, 3, 4)
        hint = "; it looks like (C, H, W): give array.transpose(1, 2, 0)" if channels_first else ""
        raise ConfigError(f"{name}: an array of {image.dtype} {tuple(image.shape)}; give uint8 pixels (H, W) or "
                          f"(H, W, 3) as PIL reads image files, floats in [0, 1], or a PIL image{hint}") from None


def _tensor_pixels(tensor, name: str):
    """A (H, W) or (C, H, W) tensor as a numpy (H, W) / (H, W, C) array; another shape is refused in one line."""
    shape = tuple(tensor.shape)
    tensor = tensor.detach().cpu()
    tensor = tensor.float() if tensor.is_floating_point() else tensor  # bfloat16 has no numpy dtype
    if tensor.dim() == 3 and shape[0] in (1, 3, 4):
        return tensor.permute(1, 2, 0).numpy()
    if tensor.dim() == 2:
        return tensor.numpy()
    fix = ("a batch: give its images, list(batch)" if tensor.dim() == 4 else
           "give (C, H, W) with C = 1, 3 or 4 as torchvision's tensors are, e.g. an (H, W, C) one as "
           "tensor.permute(2, 0, 1)" if tensor.dim() == 3 else "give (C, H, W) or (H, W)")
    raise ConfigError(f"{name}: a torch tensor of shape {shape} is not an image; {fix}")


def _float_pixels(array, name: str):
    """Float pixels in [0, 1] as uint8, round(255 v); NaN or a value outside [0, 1] is refused in one line (reading
    an image by its own range would make a dark and a bright picture of one scene equal)."""
    import numpy as np

    where = f"{name}: a float array {tuple(array.shape)}"
    if not np.isfinite(array).all():
        raise ConfigError(f"{where} holds NaN or infinite values, which have no colour; fill them and give values "
                          "in [0, 1] (or uint8 0-255)")
    if array.size and not 0 <= array.min() <= array.max() <= 1:
        raise ConfigError(f"{where} holds values {float(array.min()):.6g} to {float(array.max()):.6g}, outside [0, 1] "
                          "(torchvision's range for float images); give values in [0, 1] (e.g. 0-255 pixels / 255) "
                          "or uint8 0-255")
    return np.rint(array.astype(np.float64) * 255).astype(np.uint8)


__all__ = ["IMAGE_SUFFIXES", "IMAGE_ERRORS", "is_hidden", "is_image_file", "images_under", "walk_folder",
           "split_folders", "check_link_target", "loose_images", "image_class_folder", "check_image_headers",
           "open_quietly", "open_image", "unreadable_image", "too_large_image", "is_in_memory", "pil_image"]
