"""Prepare an image folder for the `image_folder` dataset: the train/val[/test] layout and classes.json.

    python data/image_folder/prepare.py SRC [--out DIR] [--val-fraction 0.1] [--test-fraction 0] [--mode copy]
    python data/image_folder/prepare.py --url https://example.org/photos.tar.gz --out data/image_folder/photos

SRC is either
  - already laid out: SRC/train/<class>/<image> (SRC/val, SRC/test optional; SRC/train holds class
    sub-folders): it is checked in place;
  - one sub-folder per class: SRC/<class>/<image>: each class's images are split (seeded, --seed) into
    OUT/train, OUT/val (--val-fraction) and OUT/test (--test-fraction; a fraction above 0 gives every
    class at least one image), copied (--mode copy) or linked (hardlink, symlink), never moved; OUT
    (default data/image_folder/<SRC name>) must not hold train/ yet. A class may be called train: SRC/train
    holding images rather than class sub-folders is a class (CIFAR-100 has one).
Every image's header is opened (no pixels decoded): a file PIL cannot identify stops with one line naming
it; files without an image extension are skipped, as torchvision's ImageFolder skips them. Writes
OUT/classes.json: {"class_names": [...], "counts": {split: {class: images}}}. Downloads only with --url
(a .tar[.gz] or .zip archive, extracted safely into OUT/raw). Train on it with

    xformer train RECIPE.yaml data.name=image_folder data.args.root=OUT [train.num_workers=2]

(images are read from disk item by item, in DataLoader workers when train.num_workers > 0).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if (ROOT / "xformer").is_dir() and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package

from xformer.data.image_files import IMAGE_SUFFIXES, check_link_target, images_under, loose_images  # noqa: E402
from xformer.data.images import check_image_headers  # noqa: E402
from xformer.data.download import download, run_script  # noqa: E402
from xformer.errors import UserError  # noqa: E402

EXTENSIONS = IMAGE_SUFFIXES  # what xformer's image_folder reads
SPLITS = ("train", "val", "test")


def extract(archive: Path, dest: Path) -> Path:
    """Unpack a .tar(.gz/.bz2/.xz) or .zip into ``dest`` (no member may land outside it); the folder
    that holds the classes (descending through single sub-folders)."""
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if not (dest / name).resolve().is_relative_to(dest.resolve()):
                    raise UserError(f"{archive}: member {name} would land outside {dest}; refusing it")
            z.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            if hasattr(tarfile, "data_filter"):
                t.extractall(dest, filter="data")
            else:  # Python before 3.10.12 / 3.11.4 has no extraction filters: refuse what "data" would refuse
                for member in t.getmembers():
                    inside = (dest / member.name).resolve().is_relative_to(dest.resolve())
                    if not inside or not (member.isfile() or member.isdir()):
                        raise UserError(f"{archive}: member {member.name} is not a plain file or folder inside "
                                        f"{dest}; refusing it")
                t.extractall(dest)
    else:
        raise UserError(f"{archive} is neither a tar nor a zip archive; give a local folder instead")
    top = dest
    while not (top / "train").is_dir() and len(subs := [p for p in top.iterdir() if p.is_dir()]) == 1 \
            and not images_in(top):
        top = subs[0]
    return top


def images_in(folder: Path) -> list[Path]:
    return loose_images(folder)


def class_images(folder: Path) -> list[Path]:
    """The images of one class folder, in its sub-folders too, hidden ones left out (as image_folder reads them)."""
    return images_under(folder)


def classes_of(folder: Path) -> dict[str, list[Path]]:
    """{class: its image files} of a folder with one sub-folder per class (a class folder that is a link to
    nothing, e.g. on an unmounted drive, is refused rather than dropped)."""
    for entry in os.scandir(folder):
        if not entry.name.startswith("."):
            check_link_target(entry)
    found = {d.name: class_images(d) for d in sorted(folder.iterdir()) if d.is_dir() and not d.name.startswith(".")}
    if not found:
        raise UserError(f"{folder} holds no class sub-folders; expected {folder}/<class>/<image>")
    empty = [c for c, files in found.items() if not files]
    if empty:
        raise UserError(f"class folder(s) {', '.join(str(folder / c) for c in empty)} hold no images "
                        f"({'/'.join(EXTENSIONS)}); add images or remove the folder")
    return found


def place(source: Path, dest: Path, mode: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if mode == "copy":
        shutil.copy2(source, dest)
    elif mode == "hardlink":
        os.link(source, dest)
    else:
        dest.symlink_to(source.resolve())


def split_classes(src: Path, out: Path, val_fraction: float, test_fraction: float, seed: int, mode: str) -> None:
    """Each class's images shuffled (seeded) and cut: test first, then val, the rest train; a fraction
    above 0 gives every class at least one image."""
    if (out / "train").exists():
        raise UserError(f"{out / 'train'} already exists; choose another --out or remove it (nothing is overwritten)")
    rng = random.Random(seed)
    for name, files in classes_of(src).items():
        files = list(files)
        rng.shuffle(files)
        n_test, n_val = (max(1, round(len(files) * f)) if f > 0 else 0 for f in (test_fraction, val_fraction))
        if len(files) - n_test - n_val < 1:
            raise UserError(f"class {name} has {len(files)} image(s): too few to keep one for training after "
                            f"--val-fraction {val_fraction} and --test-fraction {test_fraction}")
        cut = {"test": files[:n_test], "val": files[n_test:n_test + n_val], "train": files[n_test + n_val:]}
        for split, chosen in cut.items():
            for f in chosen:
                place(f, out / split / name / f.relative_to(src / name), mode)  # sub-folders kept: no name clashes


def check_layout(out: Path) -> dict:
    """classes.json's content for a laid-out folder, after checking classes and image headers."""
    splits = {s: classes_of(out / s) for s in SPLITS if (out / s).is_dir()}
    names = list(splits["train"])
    for split, found in splits.items():
        if list(found) != names:
            raise UserError(f"{out / split} has classes {list(found)}, train has {names}; give every split the same "
                            "class folders")
        check_image_headers(f for files in found.values() for f in files)
    return {"class_names": names, "counts": {s: {c: len(f) for c, f in found.items()} for s, found in splits.items()}}


def is_laid_out(src: Path) -> bool:
    """Whether SRC is laid out as SRC/train/<class>/...: SRC/train holds class sub-folders. A train/ that holds
    its images directly is a class of a SRC/<class>/<image> folder instead."""
    train = src / "train"
    return train.is_dir() and any(e.is_dir() and not e.name.startswith(".") for e in os.scandir(train))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", nargs="?", type=Path, help="SRC/train/<class>/... or SRC/<class>/...")
    parser.add_argument("--url", help="download an archive from URL first (only then is the network used)")
    parser.add_argument("--out", type=Path, help="folder to write (default: SRC when laid out, else "
                                                 "data/image_folder/<SRC name>)")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--test-fraction", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", choices=("copy", "hardlink", "symlink"), default="copy")
    args = parser.parse_args(argv)
    if not (0 <= args.val_fraction < 1 and 0 <= args.test_fraction < 1):
        raise UserError("--val-fraction and --test-fraction must be in [0, 1)")
    src = args.src
    if args.url:
        if args.out is None:
            raise UserError("--url needs --out, the folder to download and prepare into")
        name = Path(args.url.split("?")[0]).name or "archive"
        src = extract(download(args.url, args.out / "download" / name, "a local folder"), args.out / "raw")
    if src is None:
        raise UserError("give SRC, a folder of images (SRC/<class>/<image> or SRC/train/<class>/<image>), or --url")
    if not src.is_dir():
        raise UserError(f"{src} is not a folder; give SRC/<class>/<image> or SRC/train/<class>/<image>")
    if is_laid_out(src):
        out = args.out or src
        if out.resolve() != src.resolve():
            others = sorted(p.name for p in src.iterdir() if p.is_dir() and p.name not in SPLITS
                            and not p.name.startswith("."))
            hint = (f" (if train is a class beside {', '.join(others[:3])}, rename its folder, e.g. to train_class, "
                    "and run this again)") if others else ""
            raise UserError(f"{src} is laid out already ({src / 'train'} holds class folders); leave out --out to "
                            f"check it in place{hint}")
    else:
        out = args.out or HERE / src.name
        split_classes(src, out, args.val_fraction, args.test_fraction, args.seed, args.mode)
    classes = check_layout(out)
    (out / "classes.json").write_text(json.dumps(classes, indent=1), encoding="utf-8")
    counts = ", ".join(f"{s} {sum(c.values()):,}" for s, c in classes["counts"].items())
    print(f"{out}: {len(classes['class_names'])} classes; {counts} images")
    return classes


if __name__ == "__main__":
    run_script(main)
