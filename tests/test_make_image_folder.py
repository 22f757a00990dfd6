"""benchmarks/make_image_folder.py on small fake copies of the official MNIST and CIFAR-10 files (the real sets
are not in the repository), and the small-image recipes tasks/{cct,cnn}_{28,32}.yaml training two steps on
the folders it writes."""
from __future__ import annotations

import gzip
import importlib.util
import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("make_image_folder", ROOT / "benchmarks" / "make_image_folder.py")
mif = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mif)


def write_idx(path: Path, array: np.ndarray, gz: bool = False, cut: int | None = None) -> None:
    data = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    data += array.astype(np.uint8).tobytes()
    if cut is not None:
        data = data[:cut]
    path.write_bytes(gzip.compress(data) if gz else data)


def fake_mnist(raw: Path, n_train: int = 60, n_test: int = 40, cut_train_to: int | None = None) -> None:
    """Images whose first pixel is the label, so a written PNG can be checked against its class folder."""
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in (("train", n_train), ("t10k", n_test)):
        y = np.arange(n) % 10
        x = rng.integers(0, 256, (n, 28, 28))
        x[:, 0, 0] = y
        cut = None if name == "t10k" or cut_train_to is None else 16 + cut_train_to * 784 + 100
        write_idx(raw / f"{name}-images-idx3-ubyte", x, cut=cut)
        write_idx(raw / f"{name}-labels-idx1-ubyte.gz", y, gz=True)


def fake_cifar(raw: Path, per_batch: int = 20, cut_test_to: int | None = None) -> None:
    """Python-pickle batches in the official key order (labels before the pixels; protocol 3, where the pixels are
    one BINBYTES string as in the official Python 2 files' BINSTRING); the first pixel of the red plane is the label."""
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        y = [int(v) for v in rng.permutation(np.arange(per_batch) % 10)]
        x = rng.integers(0, 256, (per_batch, 3072)).astype(np.uint8)
        x[:, 0] = y
        batch = {b"batch_label": name.encode(), b"labels": y, b"data": x,
                 b"filenames": [f"{i}.png".encode() for i in range(per_batch)]}
        data = pickle.dumps(batch, protocol=3)
        if name == "test_batch" and cut_test_to is not None:  # a copy cut short inside the pixels
            start = data.find(x.tobytes()[:64])
            data = data[:start + cut_test_to * 3072 + 1000]
        (raw / name).write_bytes(data)
    (raw / "batches.meta").write_bytes(pickle.dumps({b"label_names": [n.encode() for n in mif.CIFAR10_CLASSES]},
                                                    protocol=2))


def files(folder: Path) -> dict[str, list[Path]]:
    return {c.name: sorted(c.glob("*.png")) for c in sorted(folder.iterdir())}


def test_mnist_folder_is_balanced_disjoint_and_labelled(tmp_path, capsys):
    fake_mnist(tmp_path / "raw", n_train=80, cut_train_to=50)  # a train-images file cut short after 50 images
    out = tmp_path / "mnist"
    assert mif.main(["--source", "mnist", "--raw", str(tmp_path / "raw"), "--out", str(out), "--train", "20",
                     "--val", "10", "--test", "30", "--seed", "3"]) == 0
    said = capsys.readouterr().out
    assert "train-images 50" in said and "train 20, val 10, test 30" in said
    manifest = json.loads((out / "manifest.json").read_text())
    train, val = manifest["indices"]["train"], manifest["indices"]["val"]
    assert not set(train) & set(val) and max(train + val) < 50
    for split, n in (("train", 20), ("val", 10), ("test", 30)):
        per_class = files(out / split)
        assert sorted(per_class) == [str(k) for k in range(10)]
        assert all(len(v) == n // 10 for v in per_class.values())
        for label, paths in per_class.items():
            image = Image.open(paths[0])
            assert image.mode == "L" and image.size == (28, 28)
            assert np.asarray(image)[0, 0] == int(label)
    again = tmp_path / "again"
    mif.main(["--source", "mnist", "--raw", str(tmp_path / "raw"), "--out", str(again), "--train", "20", "--val",
              "10", "--test", "30", "--seed", "3"])
    assert json.loads((again / "manifest.json").read_text())["indices"] == manifest["indices"]


def test_cifar_folder_reads_a_cut_batch_and_refuses_too_many(tmp_path, capsys):
    fake_cifar(tmp_path / "raw", per_batch=20, cut_test_to=13)
    out = tmp_path / "cifar"
    assert mif.main(["--source", "cifar10", "--raw", str(tmp_path / "raw"), "--out", str(out), "--train", "50",
                     "--val", "30", "--test", "0"]) == 0
    assert "test_batch 13" in capsys.readouterr().out
    assert sum(len(v) for v in files(out / "test").values()) == 13
    for label, paths in files(out / "train").items():
        assert len(paths) == 5
        image = Image.open(paths[0])
        assert image.mode == "RGB" and image.size == (32, 32)
        assert mif.CIFAR10_CLASSES[np.asarray(image)[0, 0, 0]] == label
    with pytest.raises(SystemExit, match="exists"):
        mif.main(["--source", "cifar10", "--raw", str(tmp_path / "raw"), "--out", str(out)])
    with pytest.raises(SystemExit, match="val needs 5 images of class 0"):  # 10 per class in all, 6 taken by train
        mif.main(["--source", "cifar10", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "big"),
                  "--train", "60", "--val", "50"])


@pytest.mark.parametrize("recipe,source", [("tasks/cct_28", "mnist"), ("tasks/cnn_28", "mnist"),
                                           ("benchmarks/configs/vit_28", "mnist"), ("tasks/cct_32", "cifar10"),
                                           ("tasks/cnn_32", "cifar10")])
def test_small_image_recipes_train_two_steps_on_a_written_folder(tmp_path, recipe, source):
    (fake_mnist if source == "mnist" else fake_cifar)(tmp_path / "raw")
    folder = tmp_path / "images"
    mif.main(["--source", source, "--raw", str(tmp_path / "raw"), "--out", str(folder), "--train", "20", "--val",
              "10", "--test", "20"])
    from xformer.cli import main

    run = tmp_path / "run"
    assert main(["train", str(ROOT / f"{recipe}.yaml"), f"data.args.root={folder}", "train.steps=2",
                 "train.eval_every=2", "train.warmup_steps=0", "train.batch_size=8", "--out", str(run),
                 "--quiet"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["val_accuracy"] <= 1.0 and 0.0 <= metrics["test_accuracy"] <= 1.0


def test_test_images_from_the_rest_of_the_training_images_when_the_copy_has_no_test_files(tmp_path, capsys):
    fake_mnist(tmp_path / "raw", n_train=80)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte.gz"):  # a copy without the test files
        (tmp_path / "raw" / name).unlink()
    out = tmp_path / "fashion"
    assert mif.main(["--source", "fashion_mnist", "--raw", str(tmp_path / "raw"), "--out", str(out), "--train", "20",
                     "--val", "10", "--test", "30", "--test-from", "train"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    train, val, test = (set(manifest["indices"][k]) for k in ("train", "val", "test"))
    assert manifest["test_from"] == "train" and len(test) == 30 and not (train | val) & test
    assert max(train | val | test) < 80
    for split in ("train", "val", "test"):  # every image in its class's folder (first pixel = label)
        for name, paths in files(out / split).items():
            label = mif.FASHION_CLASSES.index(name)
            assert all(np.asarray(Image.open(p))[0, 0] == label for p in paths)
    with pytest.raises(SystemExit, match="--test-from train needs"):
        mif.main(["--source", "fashion_mnist", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "o2"),
                  "--test", "0", "--test-from", "train"])
    with pytest.raises(SystemExit, match="missing .*t10k-images"):  # the official test files are asked for
        mif.main(["--source", "fashion_mnist", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "o3")])
