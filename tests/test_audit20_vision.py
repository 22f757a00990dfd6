"""Audit 20 (vision): behaviour a mutation audit found unpinned. The sine-cosine positions of a non-square grid
at another image size, the seeded order of an image folder's val/test items, data.args.label_smoothing reaching
timm's Mixup, random erasing after Normalize, ``--checkpoint`` of ``xformer predict`` and ``last`` meaning the
latest checkpoint, and the per-head LSA prototype's temperature at its start."""
from __future__ import annotations

import contextlib
import io
import json
import math
import runpy
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from xformer.cli import main

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

ROOT = Path(__file__).parents[1]
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def test_sincos_positions_of_a_non_square_grid_at_another_size_are_rows_by_columns():
    """A (16, 12) image through patches of 4 is a grid of 4 rows x 3 columns: its sine-cosine positions are
    sincos_2d_table(4, 3, d) (rows first, raster order), not the table of a 3 x 4 grid, although the tokenizer
    was built for (8, 12), a 2 x 3 grid."""
    from xformer.tokenizers.image import PatchEmbedding, sincos_2d_table

    args = dict(image_size=(8, 12), patch_size=4, channels=1, class_token=False)
    with_pos = PatchEmbedding(16, positions="sincos", **args)
    without = PatchEmbedding(16, positions="none", **args)
    without.load_state_dict(with_pos.state_dict())
    images = {"images": torch.randn(1, 1, 16, 12)}
    added = with_pos(images).x - without(images).x
    assert added.shape == (1, 12, 16)
    torch.testing.assert_close(added[0], sincos_2d_table(4, 3, 16), rtol=0, atol=1e-6)
    assert (sincos_2d_table(4, 3, 16) - sincos_2d_table(3, 4, 16)).abs().max() > 0.1  # the test can tell


def write_image_folder(root: Path, splits=("train", "val", "test"), n: int = 6) -> None:
    """root/<split>/<a|b|c>/<i>.png: 3 classes x n tiny grey images per split."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in splits:
        for name in ("a", "b", "c"):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                Image.fromarray((rng.random((8, 8)) * 255).astype("uint8")).save(root / split / name / f"{i}.png")


def seeded_order(n: int) -> list[int]:
    """The documented order (xformer/data/images.py): one permutation drawn from seed 0."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(0)).tolist()


@pytest.mark.parametrize("splits", [("train", "val", "test"), ("val", "test"), ("train",)])
def test_image_folder_val_and_test_items_come_in_the_seeded_order_not_class_sorted(tmp_path, splits):
    """train.eval_batches reads the first items of val/test: in the folder's class-sorted order a few batches would
    score one class only. Each of val/ and test/ (and a val carved from train/) comes in the order of
    randperm(n, seed 0) of its class-sorted items, whose first 6 of 18 hold more than one class."""
    from xformer.data.registry import build_data

    write_image_folder(tmp_path, splits)
    data = build_data("image_folder", {"root": str(tmp_path), "image_size": 8, "channels": 1,
                                       "val_fraction": 0.5 if splits == ("train",) else 0.0})
    for split in ("val", "test"):
        items = getattr(data, split)
        if items is None:
            assert split == "test" and "test" not in splits
            continue
        labels = [int(items[i]["labels"]) for i in range(len(items))]
        assert len(set(labels[:6])) > 1, (split, labels)
        sorted_labels = sorted(labels)  # the class-sorted folder (or carved-out subset) the order draws from
        assert labels == [sorted_labels[i] for i in seeded_order(len(labels))], (split, labels)


def digits_training_batch(data, n: int = 8):
    return [data.train[i] for i in range(n)]


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_data_label_smoothing_reaches_timms_mixup(smoothing):
    """data.args.label_smoothing is Mixup's: the mixed targets are timm's Mixup(label_smoothing=smoothing) on the
    same draw. 0.0 and 0.2 differ from timm's default 0.1, which a Mixup built without it would use."""
    from timm.data import Mixup

    from xformer.data.registry import build_data

    data = build_data("digits", {"mixup": 0.8, "label_smoothing": smoothing})
    items = digits_training_batch(data)
    np.random.seed(3)
    batch = data.collate(items)
    images = torch.stack([item["images"] for item in items])
    labels = torch.stack([item["labels"] for item in items])
    np.random.seed(3)
    ref_images, ref_targets = Mixup(mixup_alpha=0.8, cutmix_alpha=0.0, label_smoothing=smoothing,
                                    num_classes=10)(images.clone(), labels.clone())
    torch.testing.assert_close(batch["labels"], ref_targets)
    torch.testing.assert_close(batch["images"], ref_images)
    assert float(batch["labels"].min()) == pytest.approx(smoothing / 10, abs=1e-6)  # off-target: smoothing / K


def test_random_erasing_fills_its_box_with_zero_after_normalising():
    """RandomErasing comes after Normalize (timm's order): the box holds 0, the mean colour, on normalised data.
    Erasing first would leave (0 - mean) / std in the box."""
    from xformer.data.image_augment import eval_transform, train_transform

    erase = train_transform((32, 32), CIFAR_MEAN, CIFAR_STD, random_erasing=1.0)
    plain = eval_transform((32, 32), CIFAR_MEAN, CIFAR_STD)
    erased = 0
    for seed in range(3):
        image = torch.randint(0, 256, (3, 32, 32), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
        torch.manual_seed(seed)
        out, normalised = erase(image), plain(image)
        changed = out != normalised
        assert (out[changed] == 0).all(), out[changed].unique()
        erased += int(changed.sum())
    assert erased > 0


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    """4 steps of tasks/vit_digits.yaml evaluated at steps 2 and 4, both checkpoints kept (one thread: --threads 1,
    which main restores after the run)."""
    run = tmp_path_factory.mktemp("audit20_vision") / "run"
    assert main(["train", str(ROOT / "tasks/vit_digits.yaml"), "train.steps=4", "train.eval_every=2",
                 "train.warmup_steps=0", "data.args.affine=false", "train.keep_last=2", "--out", str(run),
                 "--quiet", "--threads", "1"]) == 0
    assert {p.name for p in (run / "checkpoints").glob("step_*")} == {"step_00000002", "step_00000004"}
    return run


def test_predict_uses_the_checkpoint_asked_for(digits_run, tmp_path):
    """`xformer predict RUN FILE --checkpoint step_N` predicts with step N's weights: steps 2 and 4 give different
    probabilities, each the row predict_run(..., checkpoint=step_N) gives."""
    from PIL import Image
    from sklearn.datasets import load_digits

    from xformer.predict import predict_run

    image = tmp_path / "digit.png"
    Image.fromarray((load_digits().images[0] * 16).astype("uint8")).save(image)
    rows = {}
    for checkpoint in ("step_2", "step_4"):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["predict", str(digits_run), str(image), "--checkpoint", checkpoint, "--top-k", "3"]) == 0
        _, table = predict_run(digits_run, image, top_k=3, checkpoint=checkpoint)
        assert out.getvalue() == table
        rows[checkpoint] = table.splitlines()[1]
    assert rows["step_2"] != rows["step_4"], rows


def evaluated(run: Path, checkpoint: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["evaluate", str(run), "--checkpoint", checkpoint]) == 0
    return json.loads(out.getvalue())


def test_checkpoint_last_is_the_latest_and_best_is_the_best(digits_run, tmp_path):
    """``last`` (and ``latest``) name the newest checkpoint, ``best`` the one latest.json records as best, even
    where the two differ. The run's copy records step 2 as best; evaluate --checkpoint last scores step 4."""
    from xformer.train.run import run_checkpoint

    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    (run / "checkpoints/latest.json").write_text(json.dumps({"latest": "step_00000004", "best": "step_00000002"}))
    for name, step in (("last", 4), ("latest", 4), ("best", 2), ("step_2", 2), ("step_4", 4)):
        assert run_checkpoint(run, name) == run / "checkpoints" / f"step_{step:08d}", name
    last, best = evaluated(run, "last"), evaluated(run, "best")
    assert last == evaluated(run, "step_4") and best == evaluated(run, "step_2")
    assert last["val_loss"] != best["val_loss"]


def test_per_head_lsa_prototype_starts_as_plain_attention_with_the_diagonal_masked(monkeypatch, capsys):
    """benchmarks/lsa_prototype.py --per-head: t_h = d_k^-1/2 at the start (the authors' code), so LSA(Q, K, V) =
    softmax(Q K^T / sqrt(d_k) + M_diag) V, M_diag[i, i] = -inf. The script patches SelfAttention in the process
    that runs it: here monkeypatch puts the class back afterwards."""
    from xformer.core import SelfAttention
    from xformer.core import attention as A

    monkeypatch.setattr(A.SelfAttention, "__init__", A.SelfAttention.__init__)
    monkeypatch.setattr(A.SelfAttention, "_attend", A.SelfAttention._attend)
    monkeypatch.setattr(sys, "argv", ["lsa_prototype.py", "--per-head", "--help"])
    with pytest.raises(SystemExit):
        runpy.run_path(str(ROOT / "benchmarks/lsa_prototype.py"), run_name="__main__")
    capsys.readouterr()
    attention = SelfAttention(8, 2)  # d_k = 4
    assert torch.equal(attention.lsa_scale.detach(), torch.full((2,), 0.5))
    g = torch.Generator().manual_seed(0)
    q, k, v = (3 * torch.randn(1, 2, 5, 4, generator=g) for _ in range(3))
    logits = q @ k.transpose(-2, -1) / math.sqrt(4)
    expected = logits.masked_fill(torch.eye(5, dtype=torch.bool), float("-inf")).softmax(-1) @ v
    for mask in (None, torch.ones(1, 1, 5, 5, dtype=torch.bool)):
        with torch.no_grad():
            out = attention._attend(q, k, v, mask, False)
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
