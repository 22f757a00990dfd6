"""Write a stratified small-data subset of MNIST / Fashion-MNIST / CIFAR-10 as an image folder.

    python benchmarks/make_image_folder.py --source mnist --raw /work/data_cache/raw/mnist \
        --out /work/data_cache/mnist_1k --train 1000 --val 500 --test 2000 --seed 0

reads the official files from ``--raw`` (nothing is downloaded) and writes
``OUT/{train,val,test}/<class>/<index>.png``, the layout ``data: {name: image_folder}`` reads,
plus ``OUT/manifest.json`` (source, seed, sizes, and the source index of every image written).

- ``train`` and ``val`` are drawn from the official training images, disjoint, with the same
  number of images per class (``--train`` / ``--val`` split evenly over the classes; the remainder
  goes to the first classes); ``test`` likewise from the official test images (``--test 0``: all
  of them), or with ``--test-from train`` from the training images left after train and val (for a
  copy that lacks the test files; the test files are then not read). The draw is a fixed function
  of ``--seed``.
- ``--source mnist`` / ``fashion_mnist``: the IDX files ``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each may
  also be gzipped, ``.gz``), 28x28 grey.
- ``--source cifar10``: ``data_batch_1`` .. ``data_batch_5`` and ``test_batch`` of the python
  version (``cifar-10-batches-py``), 32x32 RGB; class names from ``batches.meta`` when present.

A file cut short (some public copies of these sets hold only the first megabytes of a file) is
read up to its last complete image, and the script prints how many images each file gave:
the subset is then drawn from those.  An image count that falls short of what was asked for
(in any class) is an error, never a silently smaller set.
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import pickle
import struct
import sys
from pathlib import Path

import numpy as np
from PIL import Image

SOURCES = ("mnist", "fashion_mnist", "cifar10")
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
FASHION_CLASSES = ["t-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle_boot"]


def _read_bytes(raw: Path, name: str) -> bytes:
    """The file ``name`` or ``name.gz`` under ``raw``; when both are there, the one that holds more (a copy
    may be cut short)."""
    found = []
    for path in (raw / name, raw / (name + ".gz")):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".gz":
                # a gzip file cut short still yields what it holds up to the cut
                out = gzip.GzipFile(fileobj=io.BytesIO(data))
                chunks = []
                try:
                    while True:
                        chunk = out.read(1 << 20)
                        if not chunk:
                            break
                        chunks.append(chunk)
                except (EOFError, OSError):
                    pass
                data = b"".join(chunks)
            found.append(data)
    if not found:
        raise SystemExit(f"make_image_folder: missing {raw / name} (or {name}.gz)")
    return max(found, key=len)


def read_idx(raw: Path, name: str) -> np.ndarray:
    """An IDX file (MNIST format) as an array, its first axis cut to the complete records the file holds."""
    data = _read_bytes(raw, name)
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise SystemExit(f"make_image_folder: {raw / name} is no unsigned-byte IDX file")
    ndim = data[3]
    dims = list(struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim]))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    record = int(np.prod(dims[1:])) if ndim > 1 else 1
    n = min(dims[0], len(body) // record)
    return body[:n * record].reshape([n] + dims[1:])


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: (images (N, 32, 32, 3) uint8, labels (N,)), N = the complete images in
    the file (all 10,000 for an intact file; a file cut short is read as far as it goes)."""
    if not path.is_file():
        raise SystemExit(f"make_image_folder: missing {path}")
    data = path.read_bytes()
    try:
        batch = pickle.loads(data, encoding="bytes")
        images = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception:  # cut short: labels come before the pixels in the official files
        images, labels = _read_cut_cifar_batch(path, data)
    n = min(len(images), len(labels))
    return images[:n].reshape(n, 3, 32, 32).transpose(0, 2, 3, 1), labels[:n]


def _read_cut_cifar_batch(path: Path, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    import pickletools

    labels: list[int] = []
    key = None
    try:
        for op, arg, pos in pickletools.genops(data):
            if op.name in ("SHORT_BINSTRING", "BINSTRING", "BINUNICODE", "SHORT_BINBYTES", "BINBYTES"):
                if isinstance(arg, (str, bytes)) and len(arg) < 32:
                    key = arg.decode() if isinstance(arg, bytes) else arg
            elif op.name in ("BININT1", "BININT2", "BININT") and key == "labels":
                labels.append(int(arg))
            elif key == "data" and len(labels) > 0:
                break
    except Exception:
        pass
    n_pixels = len(labels) * 3072  # the labels come whole before the pixels: 10,000 in an official batch
    start = -1
    for opcode in (b"T", b"B"):  # BINSTRING (protocol 2 str) / BINBYTES (protocol 3 bytes)
        start = data.find(opcode + struct.pack("<I", n_pixels))
        if start >= 0:
            break
    if start < 0 or not labels:
        raise SystemExit(f"make_image_folder: cannot read {path} as a CIFAR-10 python batch")
    body = np.frombuffer(data, dtype=np.uint8, offset=start + 5)
    n = len(body) // 3072
    return body[:n * 3072].reshape(n, 3072), np.asarray(labels, dtype=np.int64)


def load(source: str, raw: Path, with_test: bool = True):
    """(train images, train labels, test images, test labels, class names, per-file counts); the test
    files are not read (None, None) without ``with_test``."""
    x_te = y_te = None
    if source in ("mnist", "fashion_mnist"):
        x_tr, y_tr = read_idx(raw, "train-images-idx3-ubyte"), read_idx(raw, "train-labels-idx1-ubyte")
        counts = {"train-images": len(x_tr), "train-labels": len(y_tr)}
        n_tr = min(len(x_tr), len(y_tr))
        if with_test:
            x_te, y_te = read_idx(raw, "t10k-images-idx3-ubyte"), read_idx(raw, "t10k-labels-idx1-ubyte")
            counts.update({"t10k-images": len(x_te), "t10k-labels": len(y_te)})
            n_te = min(len(x_te), len(y_te))
            x_te, y_te = x_te[:n_te], y_te[:n_te].astype(np.int64)
        names = [str(k) for k in range(10)] if source == "mnist" else FASHION_CLASSES
        return x_tr[:n_tr], y_tr[:n_tr].astype(np.int64), x_te, y_te, names, counts
    xs, ys, counts = [], [], {}
    for k in range(1, 6):
        x, y = read_cifar_batch(raw / f"data_batch_{k}")
        xs.append(x), ys.append(y)
        counts[f"data_batch_{k}"] = len(x)
    if with_test:
        x_te, y_te = read_cifar_batch(raw / "test_batch")
        counts["test_batch"] = len(x_te)
    names = CIFAR10_CLASSES
    meta = raw / "batches.meta"
    if meta.is_file():
        try:
            names = [n.decode() if isinstance(n, bytes) else n
                     for n in pickle.loads(meta.read_bytes(), encoding="bytes")[b"label_names"]]
        except Exception:
            pass
    return np.concatenate(xs), np.concatenate(ys), x_te, y_te, names, counts


def balanced_pick(labels: np.ndarray, n: int, n_classes: int, rng: np.random.Generator,
                  exclude: set[int] | None = None, what: str = "train") -> list[int]:
    """``n`` indices with n // n_classes per class (the remainder to the first classes), drawn by ``rng``."""
    exclude = exclude or set()
    per = [n // n_classes + (1 if c < n % n_classes else 0) for c in range(n_classes)]
    picked: list[int] = []
    for c in range(n_classes):
        pool = np.array([i for i in np.flatnonzero(labels == c) if int(i) not in exclude], dtype=np.int64)
        if len(pool) < per[c]:
            raise SystemExit(f"make_image_folder: {what} needs {per[c]} images of class {c}, the files hold "
                             f"{len(pool)} (left); ask for fewer")
        picked.extend(int(i) for i in rng.permutation(pool)[:per[c]])
    return sorted(picked)


def write_split(out: Path, split: str, images: np.ndarray, labels: np.ndarray, idx: list[int],
                names: list[str]) -> None:
    for c, name in enumerate(names):
        (out / split / name).mkdir(parents=True, exist_ok=True)
    for i in idx:
        image = images[i]
        mode = "L" if image.ndim == 2 else "RGB"
        Image.fromarray(np.ascontiguousarray(image), mode=mode).save(out / split / names[labels[i]] / f"{i:05d}.png")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", choices=SOURCES, required=True)
    p.add_argument("--raw", type=Path, required=True, help="folder holding the official files")
    p.add_argument("--out", type=Path, required=True, help="image folder to write (must not exist)")
    p.add_argument("--train", type=int, default=1000, help="training images (from the official train files)")
    p.add_argument("--val", type=int, default=500, help="validation images (from the official train files, "
                   "disjoint from --train)")
    p.add_argument("--test", type=int, default=2000, help="test images from the official test files; 0: all")
    p.add_argument("--test-from", choices=("test", "train"), default="test",
                   help="train: draw the test images from the training images left after --train and --val "
                        "(for a copy without the test files; --test must then be > 0)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.out.exists():
        raise SystemExit(f"make_image_folder: {a.out} exists; choose another --out or remove it")
    if a.train <= 0 or a.val < 0 or a.test < 0:
        raise SystemExit("make_image_folder: --train must be > 0, --val and --test >= 0")
    if a.test_from == "train" and not a.test:
        raise SystemExit("make_image_folder: --test-from train needs a number of test images, e.g. --test 1000")
    x_tr, y_tr, x_te, y_te, names, counts = load(a.source, a.raw, with_test=a.test_from == "test")
    print(f"read {a.raw}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    k = len(names)
    rng = np.random.default_rng(a.seed)
    train = balanced_pick(y_tr, a.train, k, rng, what="train")
    val = balanced_pick(y_tr, a.val, k, rng, exclude=set(train), what="val") if a.val else []
    if a.test_from == "train":  # the rest of the training images: disjoint from train and val
        x_te, y_te = x_tr, y_tr
        test = balanced_pick(y_tr, a.test, k, rng, exclude=set(train) | set(val), what="test")
    else:
        test = balanced_pick(y_te, a.test, k, rng, what="test") if a.test else list(range(len(y_te)))
    write_split(a.out, "train", x_tr, y_tr, train, names)
    if val:
        write_split(a.out, "val", x_tr, y_tr, val, names)
    write_split(a.out, "test", x_te, y_te, test, names)
    manifest = {"source": a.source, "raw": str(a.raw), "seed": a.seed, "classes": names, "files": counts,
                "test_from": a.test_from, "sizes": {"train": len(train), "val": len(val), "test": len(test)},
                "indices": {"train": train, "val": val, "test": test},
                "note": "train/val indices are into the official training images (batches concatenated in order "
                        "for CIFAR-10), test indices into the official "
                        + ("test images" if a.test_from == "test" else "training images as well")}
    (a.out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    shape = "x".join(str(s) for s in x_tr.shape[1:])
    print(f"wrote {a.out}: train {len(train)}, val {len(val)}, test {len(test)} images ({shape}, {k} classes, "
          f"balanced per class, seed {a.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
