"""Which files of a folder are images, and reading them: one list shared by training (``image_folder``) and
``xformer predict``, so that a file one of them reads the other reads too.

An image is a file whose suffix is in ``IMAGE_SUFFIXES`` (case-insensitive) and whose path below the folder
searched has no hidden part: a name starting with "." (``.ipynb_checkpoints/``, ``.DS_Store``, an editor's
``.x.png.swp``) is never a class and never an image, as tools leave such entries beside the data unasked.
"""
from __future__ import annotations

import os
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
    """The image files inside ``folder`` and its sub-folders (links followed), sorted."""
    return sorted(Path(root, name) for root, _, names in os.walk(folder, followlinks=True) for name in names
                  if is_image_file(Path(root, name), folder))


def loose_images(folder: str | Path) -> list[Path]:
    """Image files lying directly in ``folder`` (a split folder's images belong in its class folders)."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and is_image_file(p, folder))


def image_class_folder(split_dir: str | Path, loader, allow_empty: bool = False):
    """torchvision's ImageFolder over ``split_dir``/<class>/**/<image>, with ``IMAGE_SUFFIXES`` and without
    hidden folders or files. A one-line ConfigError names what is missing: class folders, images in a class
    folder (unless ``allow_empty``: an evaluation split may lack a class, whose empty folder keeps the class
    list), or images left beside the class folders (which ImageFolder would skip silently)."""
    split_dir = Path(split_dir)
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
                return classes, {name: k for k, name in enumerate(classes)}

        VisibleImageFolder.__module__, VisibleImageFolder.__qualname__ = __name__, "VisibleImageFolder"
        _VISIBLE["class"] = VisibleImageFolder
    return _VISIBLE["class"]


def __getattr__(name: str):
    if name == "VisibleImageFolder":
        return _visible_image_folder()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_image_headers(paths) -> None:
    """Open each image's header (no pixels decoded) so that a file PIL cannot identify stops the run
    before training, in one line naming it."""
    for path in paths:
        try:
            with Image.open(path):
                pass
        except IMAGE_ERRORS as e:
            raise unreadable_image(path, e) from None


def open_image(path: str, mode: str):
    """ImageFolder's loader: an image that fails to decode mid-training is a one-line user error."""
    from .image_augment import convert_image

    try:
        with Image.open(path) as im:
            return convert_image(im, mode)
    except IMAGE_ERRORS as e:
        raise unreadable_image(path, e) from None


def unreadable_image(path, error: Exception) -> UserError:
    # PIL's own message for a file it cannot identify repeats the path
    reason = "cannot identify image file" if isinstance(error, UnidentifiedImageError) else first_line(error)
    return UserError(f"cannot read image {path} ({reason}); remove or replace it")


__all__ = ["IMAGE_SUFFIXES", "IMAGE_ERRORS", "is_hidden", "is_image_file", "images_under", "loose_images",
           "image_class_folder", "check_image_headers", "open_image", "unreadable_image"]
