"""Issue 13: every bad input through the CLI is refused the same way, and nothing saved is lost.

The rule (DESIGN.md, "User errors"): exit status 2, exactly one line on stderr,
``xformer: error: ...``, naming the problem (the key, value, file or option), no traceback;
and every file already in the run folder stays byte for byte as it was. A bad value is refused
before training starts (no step logged, no checkpoint written).

The catalogue calls ``xformer.cli.main(argv)`` in-process (the console script calls it); three
cases go through a real ``python -m xformer`` subprocess to show the console path is the same.
One tiny finished run of each kind is trained per session and copied into every case's own
folder, so cases cannot affect each other.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from xformer.cli import main

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

TASKS = Path(__file__).resolve().parents[1] / "tasks"
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: cuda is a valid device")

# tasks/reverse.yaml cut down to a run of about a second; a case's own overrides come after these and win
TINY = ["train.steps=4", "train.eval_every=2", "train.log_every=1", "data.args.n_train=256", "data.args.n_val=32",
        "data.args.n_test=32", "model.core.d_model=16", "model.core.d_ff=32"]


# ---- the common assertions ------------------------------------------------------------------------------------
def run_main(argv: list[str]) -> int:
    """``xformer ARGV`` in this process. Any exception but argparse's own exit propagates: the traceback case."""
    try:
        return main(argv)
    except SystemExit as e:  # argparse exits on its own errors
        return e.code if isinstance(e.code, int) else 1


def assert_refused(rc: int, stderr: str, *expect: str, forbid: str | None = None) -> None:
    """Exit status 2, one stderr line ``xformer: error: ...`` holding every ``expect`` regex, no traceback."""
    shown = stderr.strip()[-3000:]
    assert rc == 2, f"exit status {rc}, not 2; stderr:\n{shown}"
    assert "Traceback" not in stderr, f"a traceback on stderr:\n{shown}"
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"{len(lines)} lines on stderr, not one:\n{shown}"
    line = lines[0]
    assert line.startswith("xformer: error:"), f"the line does not start with 'xformer: error:': {line!r}"
    for pattern in expect:
        assert re.search(pattern, line, re.IGNORECASE), f"{pattern!r} is not named in {line!r}"
    if forbid:
        assert not re.search(forbid, line, re.IGNORECASE), f"{forbid!r} should not be in {line!r}"


def snapshot(root: Path) -> dict[str, bytes]:
    """path (relative to root) -> bytes of every file under root."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}


def assert_nothing_lost(root: Path, before: dict[str, bytes], run_folders: list[Path] = ()) -> None:
    """Every file under root that existed before is still there, byte for byte; the run folders got no new
    file either; no temporary file (``*.tmp*``) was left anywhere under root."""
    after = snapshot(root)
    changed = sorted(p for p in before if after.get(p) != before[p])
    assert not changed, f"files changed or lost: {changed}"
    runs = [f"{Path(r).relative_to(root).as_posix()}/" for r in run_folders]
    added = sorted(p for p in after if p not in before and p.startswith(tuple(runs)))
    assert not added, f"files added to a run folder: {added}"
    stray = sorted(p.relative_to(root).as_posix() for p in Path(root).rglob("*.tmp*"))
    stray = [p for p in stray if p not in before]
    assert not stray, f"temporary files left behind: {stray}"


def never_trained(run_dir: Path) -> None:
    """A refused `xformer train` stopped before its first step: no step logged, no checkpoint written."""
    assert not (run_dir / "checkpoints").exists(), f"{run_dir}/checkpoints was written: training started"
    assert not (run_dir / "metrics.jsonl").exists() or not (run_dir / "metrics.jsonl").read_text().strip(), \
        f"{run_dir}/metrics.jsonl has training steps: training started"


# ---- the session's finished runs and input files ---------------------------------------------------------------
@dataclass
class Session:
    runs: dict[str, Path]  # placeholder -> finished run folder (copied into a case on first use)
    inputs: dict[str, str]  # placeholder -> path of an input file or recipe


def write_series_csv(path: Path, rows: int = 300) -> pd.DataFrame:
    t = np.arange(rows)
    frame = pd.DataFrame({"date": pd.date_range("2021-01-01", periods=rows, freq="h"),
                          "load": np.sin(2 * np.pi * t / 24) + 0.01 * t,
                          "temp": np.cos(2 * np.pi * t / 24) + np.random.default_rng(0).normal(0, 0.1, rows)})
    frame.to_csv(path, index=False)
    return frame


def write_image_folder(root: Path, corrupt: bool = True, splits=(("train", 4), ("val", 2), ("test", 2)),
                       classes=("a", "b")) -> None:
    """root/{train,val,test}/{a,b}/*.png, 8x8 RGB, plus (``corrupt``) one corrupt image root/train/a/bad.png."""
    from PIL import Image

    for split, n in splits:
        for k, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (8, 8), (200 * k, 10 * i, 100)).save(folder / f"{i}.png")
    if corrupt:
        (root / "train" / "a" / "bad.png").write_bytes(b"this is not a png \x00\xff" * 8)


@pytest.fixture(scope="session")
def session(tmp_path_factory) -> Session:
    """Four tiny finished runs (reverse digits, a csv series forecaster, a char LM, a digits ViT) and inputs."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("bad_inputs_session")
    data = root / "data"
    data.mkdir()
    frame = write_series_csv(data / "series.csv")
    bad_dates = frame.astype({"date": str})
    bad_dates.loc[100, "date"] = "not-a-date"
    bad_dates.to_csv(data / "bad_date.csv", index=False)
    (data / "binary.csv").write_bytes(bytes(range(256)) * 40)
    frame.head(10).to_csv(data / "short.csv", index=False)
    frame.rename(columns={"load": "humidity", "temp": "wind"}).to_csv(data / "other_columns.csv", index=False)
    (data / "text.txt").write_text("".join(f"the quick brown fox {i} jumps over the lazy dog.\n" for i in range(80)))
    (data / "binary.bin").write_bytes(b"\xff\xfe\x00\x81" * 64)
    (data / "bad.yaml").write_text("model: {architecture: decoder\ntrain: [unclosed\n")
    (data / "list.yaml").write_text("- model\n- train\n")
    write_image_folder(data / "images")

    series_recipe = {
        "model": {"architecture": "encoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
                  "tokenizer": {"name": "series_patches", "args": {"patch_len": 8, "stride": 4}},
                  "head": {"name": "forecast"}},
        "data": {"name": "csv_series", "args": {"path": str(data / "series.csv"), "input_len": 24, "horizon": 8}},
        "train": {"steps": 4, "batch_size": 16, "lr": 1e-3, "eval_every": 2, "log_every": 1},
    }
    image_recipe = {
        "model": {"architecture": "encoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
                  "tokenizer": {"name": "image_patches", "args": {"patch_size": 4}},
                  "head": {"name": "classification"}},
        "data": {"name": "image_folder", "args": {"root": str(data / "images"), "image_size": 8}},
        "train": {"steps": 2, "batch_size": 4, "eval_every": 2, "log_every": 1},
    }
    (data / "series.yaml").write_text(yaml.safe_dump(series_recipe))
    (data / "images.yaml").write_text(yaml.safe_dump(image_recipe))
    write_image_folder(data / "good_images", corrupt=False)
    image_recipe["data"]["args"]["root"] = str(data / "good_images")
    (data / "good_images.yaml").write_text(yaml.safe_dump(image_recipe))

    small_core = ["model.core.d_model=16", "model.core.n_layers=1", "model.core.n_heads=2", "model.core.d_ff=32"]
    runs = {"run": root / "reverse", "srun": root / "series", "trun": root / "text", "vrun": root / "vision"}
    commands = {
        "run": ["train", str(TASKS / "reverse.yaml"), *TINY],
        "srun": ["train", str(data / "series.yaml")],
        "trun": ["train", str(TASKS / "char_gpt_shakespeare.yaml"), f"data.args.files={data / 'text.txt'}",
                 "data.args.block_size=16", "train.steps=2", "train.eval_every=2", "train.log_every=1",
                 "train.warmup_steps=0", "train.batch_size=8", *small_core],
        "vrun": ["train", str(TASKS / "vit_digits.yaml"), "data.args.affine=false", "train.steps=2",
                 "train.eval_every=2", "train.log_every=1", "train.warmup_steps=0", "train.batch_size=16",
                 "model.tokenizer.args.patch_size=4", *small_core],
    }
    for key, argv in commands.items():
        assert run_main([*argv, "--out", str(runs[key])]) == 0, f"the session's {key} run did not train"
    inputs = {"reverse": str(TASKS / "reverse.yaml"), "series": str(data / "series.yaml"),
              "images": str(data / "images.yaml"), "good_images": str(data / "good_images.yaml"),
              "vit_digits": str(TASKS / "vit_digits.yaml"), "csv": str(data / "series.csv"),
              "bad_date_csv": str(data / "bad_date.csv"), "binary_csv": str(data / "binary.csv"),
              "short_csv": str(data / "short.csv"), "other_columns_csv": str(data / "other_columns.csv"),
              "text": str(data / "text.txt"), "binary": str(data / "binary.bin"),
              "bad_yaml": str(data / "bad.yaml"), "list_yaml": str(data / "list.yaml")}
    return Session(runs, inputs)


class Ctx(dict):
    """The placeholders of a case's argv. {run} {srun} {trun} {vrun}: this case's own copy of the session's
    reverse-digits, series, text and image run (copied when first named); {new}: a run folder that does not
    exist yet; {tmp}: the case's folder; and the session's inputs ({reverse}, {series}, {csv}, ...)."""

    def __init__(self, tmp: Path, session: Session):
        super().__init__(tmp=str(tmp), new=str(tmp / "new_run"), **session.inputs)
        self.tmp, self.session, self.copies = tmp, session, []

    def __missing__(self, key: str) -> str:
        if key not in self.session.runs:
            raise KeyError(key)
        shutil.copytree(self.session.runs[key], self.tmp / key)
        self.copies.append(self.tmp / key)
        self[key] = str(self.tmp / key)
        return self[key]

    def path(self, key: str) -> Path:
        return Path(self[key])


# ---- the catalogue ----------------------------------------------------------------------------------------------
@dataclass
class Case:
    argv: list[str]
    expect: tuple[str, ...]  # regexes (case-insensitive) the error line must all hold
    setup: Callable[[Ctx], None] | None = None  # prepares the bad state (its result is what must not change)
    forbid: str | None = None  # a regex the line must not hold
    fresh: bool = False  # `xformer train ... --out {new}`: must stop before the first step
    max_seconds: float | None = None  # must be refused this fast


def _expect(expect: str | tuple[str, ...]) -> tuple[str, ...]:
    return (expect,) if isinstance(expect, str) else tuple(expect)


def train(*overrides: str, expect, recipe: str = "reverse", setup=None, id: str | None = None, marks=(),
          max_seconds=None):
    """`xformer train RECIPE [TINY] OVERRIDES --out NEW`: refused before training."""
    tiny = TINY if recipe == "reverse" else []
    case = Case(["train", f"{{{recipe}}}", *tiny, *overrides, "--out", "{new}"], _expect(expect), setup,
                fresh=True, max_seconds=max_seconds)
    return pytest.param(case, id=id or " ".join(overrides), marks=marks)


def resume(*overrides: str, expect, setup=None, id: str | None = None, forbid=None, run: str = "{run}"):
    """`xformer train --resume RUN OVERRIDES`: refused, the run folder unchanged."""
    case = Case(["train", "--resume", run, *overrides], _expect(expect), setup, forbid)
    return pytest.param(case, id=id or " ".join(["--resume RUN", *overrides]))


def cli(*argv: str, expect, setup=None, forbid=None, id: str | None = None, marks=()):
    return pytest.param(Case(list(argv), _expect(expect), setup, forbid), id=id or " ".join(argv), marks=marks)


# setups: each makes one bad state inside the case's folder
def latest_step(run: Path) -> Path:
    return run / "checkpoints" / json.loads((run / "checkpoints" / "latest.json").read_text())["latest"]


def d_model_edited(ctx: Ctx) -> None:
    config = ctx.path("run") / "config.yaml"
    text = config.read_text()
    assert "\n    d_model: 16\n" in text
    config.write_text(text.replace("\n    d_model: 16\n", "\n    d_model: 32\n", 1))


def latest_json_not_utf8(ctx: Ctx) -> None:
    (ctx.path("run") / "checkpoints" / "latest.json").write_bytes(b"\xff\xfe\x00")


def state_json_not_utf8(ctx: Ctx) -> None:
    (latest_step(ctx.path("run")) / "state.json").write_bytes(b"\xff\xfe\x00")


def latest_points_nowhere(ctx: Ctx) -> None:
    (ctx.path("run") / "checkpoints" / "latest.json").write_text('{"latest": "step_00000099", "best": "step_00000099"}')


def trainer_pt_garbled(ctx: Ctx) -> None:
    """Same size as recorded in state.json (so the size check passes), but not a torch file."""
    path = latest_step(ctx.path("run")) / "trainer.pt"
    size = path.stat().st_size
    path.write_bytes((b"garbage!" * (size // 8 + 1))[:size])


def weights_truncated(ctx: Ctx) -> None:
    for path in (ctx.path("run") / "checkpoints").glob("step_*/model.safetensors"):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def folder(name: str, files: dict[str, bytes]):
    def make(ctx: Ctx) -> None:
        (ctx.tmp / name).mkdir()
        for file, data in files.items():
            (ctx.tmp / name / file).write_bytes(data)
    return make


not_a_run = folder("not_a_run", {"notes.txt": b"my notes\n"})
existing_folder = folder("existing_folder", {"keep.txt": b"keep me\n"})
old_report = folder("report", {"results.json": b'{"domains": {}}\n', "my_notes.txt": b"keep me\n"})

def broken_image(ctx: Ctx) -> None:
    (ctx.tmp / "broken.png").write_bytes(b"this is not a png \x00\xff" * 8)


def an_image(ctx: Ctx) -> None:
    from PIL import Image

    Image.new("L", (8, 8), 100).save(ctx.tmp / "digit.png")


def an_image_and_old_predictions(ctx: Ctx) -> None:
    an_image(ctx)
    (ctx.tmp / "old.csv").write_text("file,class,probability\nmine.png,cat,0.9\n")


def image_folder_of(name: str, **layout):
    """{tmp}/NAME: an image folder laid out as ``write_image_folder`` is asked to (no corrupt image)."""
    return lambda ctx: write_image_folder(ctx.tmp / name, corrupt=False, **layout)


def images_without_class_folders(ctx: Ctx) -> None:
    from PIL import Image

    (ctx.tmp / "flat" / "train").mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (8, 8), (10 * i, 0, 0)).save(ctx.tmp / "flat" / "train" / f"{i}.png")


def digit_and(*edits: Callable[[Path], None]):
    """an_image, then each ``edit`` of the case's copy of the digits ViT run ({vrun})."""
    def make(ctx: Ctx) -> None:
        an_image(ctx)
        for edit in edits:
            edit(ctx.path("vrun"))
    return make


def classes_json_cut_short(run: Path) -> None:
    (run / "classes.json").write_text('{"class_names": ["0", "1", "2"')


def classes_json_three_names(run: Path) -> None:
    (run / "classes.json").write_text('{"class_names": ["0", "1", "2"]}')


def preprocess_json_without_channels(run: Path) -> None:
    spec = json.loads((run / "preprocess.json").read_text())
    del spec["channels"]
    (run / "preprocess.json").write_text(json.dumps(spec))


def distill(*overrides: str, expect, id: str):
    """`xformer train tasks/vit_digits.yaml` (tiny) distilled from the digits ViT run: refused before training."""
    tiny = ["data.args.affine=false", "train.steps=2", "train.eval_every=2", "train.warmup_steps=0",
            "train.batch_size=16", "model.tokenizer.args.patch_size=4", "model.core.d_model=16",
            "model.core.n_layers=1", "model.core.n_heads=2", "model.core.d_ff=32"]
    case = Case(["train", str(TASKS / "vit_digits.yaml"), *tiny, "distill.teacher={vrun}", *overrides, "--out",
                 "{new}"], _expect(expect), fresh=True)
    return pytest.param(case, id=id)


SMALL_COMPARE = ["--domains", "series", "--steps", "2", "--d-model", "16", "--layers", "1", "--heads", "2", "--quiet"]

CASES = [
    # -- train: values out of range ---------------------------------------------------------------------------
    train("train.lr=-1", expect="train.lr"),
    train("train.lr=.nan", expect="train.lr"),
    train("train.lr=0", expect="train.lr"),
    train("train.lr=.inf", expect="train.lr"),
    train("train.lr=abc", expect="train.lr"),
    train("train.weight_decay=-1", expect="train.weight_decay"),
    train("train.sam.rho=-0.05", expect="train.sam.rho"),
    train("train.steps=0", expect="train.steps"),
    train("train.steps=-5", expect="train.steps"),
    train("train.steps=abc", expect="train.steps"),
    train("train.batch_size=0", expect="train.batch_size"),
    train("train.batch_size=100000", expect="batch_size"),
    train("train.device=cuda", expect="cuda", marks=NO_GPU),
    train("train.device=nonsense", expect="train.device"),
    train("train.eval_batches=-1", expect="train.eval_batches"),
    train("train.eval_batch_size=0", expect="train.eval_batch_size"),
    train("train.eval_batch_size=-3", expect="train.eval_batch_size"),
    train("train.seed=-1", expect="train.seed"),
    train("train.warmup_steps=-1", expect="train.warmup_steps"),
    train("train.betas=[0.9]", expect="train.betas"),
    train("train.betas=[0.9,1.5]", expect="train.betas"),
    train("train.clip=-1", expect="train.clip"),
    train("train.keep_last=0", expect="train.keep_last"),
    train("train.schedule=exponential", expect="train.schedule"),
    train("train.precision=fp16", expect="train.precision"),
    train("train.num_workers=-1", expect="train.num_workers"),
    train("train.num_workers=100000", expect=("train.num_workers", "CPU")),
    train("train.early_stopping.metric=val_nonsense", expect="val_nonsense"),
    # -- train: the model -----------------------------------------------------------------------------------
    train("model.core.n_heads=0", expect="n_heads"),
    train("model.core.n_heads=3", expect="n_heads"),
    train("model.core.n_layers=0", expect="n_layers"),
    train("model.core.d_model=-16", expect="d_model"),
    train("model.core.d_model=1048576", "model.core.n_layers=4096", "model.core.n_heads=1",
          expect="memory", max_seconds=10, id="absurd size: d_model=1048576 n_layers=4096"),
    train("model.core.n_kv_heads=0", expect="n_kv_heads"),
    train("model.core.n_kv_heads=-2", expect="n_kv_heads"),
    train("model.core.d_ff=-1", expect="d_ff"),
    train("model.core.dropout=1", expect="dropout"),
    train("model.core.attn_dropout=1.5", expect="attn_dropout"),
    train("model.core.norm_eps=-1", expect="norm_eps"),
    train("model.tokenizer.args.max_positions=-4", expect="max_positions"),
    train("model.tokenizer.args.dropout=1", expect="dropout"),
    train("model.tokenizer.name=nonsense_tokenizer", expect="nonsense_tokenizer"),
    # -- train: the data ------------------------------------------------------------------------------------
    train("data.args.n_train=-1", expect="n_train"),
    train("data.args.max_len=0", expect="max_len"),
    train("data.args.min_len=9", expect="min_len"),
    train("data.args.n_trian=5", expect=("n_trian", "did you mean|accept")),
    train("data.name=nonsense_data", expect="nonsense_data"),
    train("model.tokenizer.args.stride=0", recipe="series", expect="stride", id="series: tokenizer stride=0"),
    train("data.args.horizon=0", recipe="series", expect="horizon", id="series: data.args.horizon=0"),
    train("data.args.input_len=0", recipe="series", expect="input_len", id="series: data.args.input_len=0"),
    train("data.args.path={bad_date_csv}", recipe="series", expect=("bad_date.csv|'date'", "not-a-date"),
          id="series: csv with an unparseable date"),
    train("data.args.path={binary_csv}", recipe="series", expect="binary.csv", id="series: a binary file as csv"),
    train(recipe="images", expect="bad.png", id="image_folder with a corrupt bad.png"),
    # -- train: image arguments and recipe values the data fixes -----------------------------------------------
    train("model.head.args.n_classes=5", recipe="vit_digits", expect=("n_classes is 5", "10 classes")),
    train("model.tokenizer.args.channels=3", recipe="vit_digits", expect=("channels is 3", "data.args.channels=3")),
    train("model.tokenizer.args.image_size=16", recipe="vit_digits", expect=("image_size is 16", "data.args.image_size")),
    train("model.tokenizer.args.class_token=false", recipe="vit_digits", expect=("pool=cls", "class_token=true"),
          id="pool cls without a class token"),
    train("distill.alpha=0.3", recipe="vit_digits", expect=("distill.teacher is not",), id="distill.alpha, no teacher"),
    train("data.args.crop_scale=[1.5,0.2]", recipe="good_images", expect=r"crop_scale must be \[min, max\]"),
    train("data.args.crop_scale=0.5", recipe="good_images", expect=r"crop_scale must be \[min, max\]"),
    train("data.args.mean=[0.4,0.4]", "data.args.std=[0.2,0.2]", recipe="good_images",
          expect=("data.args.mean", "one number or 3")),
    train("data.args.mean=[0.5,0.5,0.5]", recipe="good_images", expect=("mean", "std", "together")),
    train("data.args.mean=[0,0,0]", "data.args.std=[0,0,0]", recipe="good_images", expect=("data.args.std", "> 0")),
    train("data.args.root={tmp}/one", recipe="good_images", setup=image_folder_of("one", classes=("a",)),
          expect=("one class", "at least two"), id="image_folder with one class"),
    train("data.args.root={tmp}/flat", recipe="good_images", setup=images_without_class_folders,
          expect=("no class folders", "sub-folder named after the class"), id="image_folder without class folders"),
    train("data.args.root={tmp}/few", recipe="good_images", setup=image_folder_of("few", splits=(("train", 2),)),
          expect=("val_fraction", "fewer than the 2 classes", "val/"), id="image_folder too small to split"),
    train("data.args.root={tmp}/lone", recipe="good_images",
          setup=image_folder_of("lone", splits=(("train", 1),)), expect=("class a has one training image", "val/"),
          id="image_folder: a class of one image"),
    train("data.args.image_size=512", "model.tokenizer.args.patch_size=2", recipe="good_images",
          expect=("65536 tokens", "patch_size=32"), id="512x512 in patches of 2: a patch size that tiles it"),
    cli("train", "{reverse}", *TINY, "--out", "{tmp}/not_a_run", "--overwrite", setup=not_a_run,
        expect=("no config.yaml", "not the folder of a run"), id="--out NOT_A_RUN --overwrite"),
    # -- train: the recipe and the command line --------------------------------------------------------------
    train("train.lrr=1", expect=("train.lrr", "did you mean")),
    train("model.core.n_layer=2", expect="model.core.n_layer"),
    train("train.lr", expect="train.lr", id="override without ="),
    cli("train", "{bad_yaml}", "--out", "{new}", expect="bad.yaml", id="recipe is bad YAML"),
    cli("train", "{list_yaml}", "--out", "{new}", expect="list.yaml", id="recipe is a YAML list"),
    cli("train", "{tmp}/nope.yaml", "--out", "{new}", expect="nope.yaml", id="recipe file missing"),
    cli("train", "--out", "{new}", expect="recipe", id="no recipe and no --resume"),
    cli("train", "{reverse}", "--bogus", expect="--bogus", id="unknown option (argparse)"),
    cli("train", "{reverse}", *TINY, "--out", "{run}", expect=("--resume", "--overwrite"),
        id="--out EXISTING_FINISHED_RUN"),
    cli("train", "{reverse}", "--resume", "{run}", "--out", "{new}", expect=("--resume", "--out"),
        id="--resume and --out together"),
    cli("train", "--resume", "{run}", "--overwrite", expect=("--resume", "--overwrite"),
        id="--resume and --overwrite together"),
    cli("train", "{reverse}", *TINY, "--out", ".", "--overwrite", setup=existing_folder, expect="current folder",
        id="--out . --overwrite (the folder one is in)"),
    # -- train --resume ------------------------------------------------------------------------------------------
    resume(expect="config.yaml|d_model|fit", setup=d_model_edited, id="--resume after config.yaml d_model edited"),
    resume(expect=("missing_run", "run folder"), forbid="recipe|config", run="{tmp}/missing_run",
           id="--resume FOLDER_THAT_DOES_NOT_EXIST"),
    resume(expect=("not_a_run", "run folder"), forbid="recipe", setup=not_a_run, run="{tmp}/not_a_run",
           id="--resume FOLDER_NOT_A_RUN"),
    resume(expect="latest.json", setup=latest_json_not_utf8, id="--resume latest.json not UTF-8"),
    resume(expect="state.json", setup=state_json_not_utf8, id="--resume state.json not UTF-8"),
    resume(expect="step_00000099", setup=latest_points_nowhere, id="--resume latest.json points at no folder"),
    resume(expect="trainer.pt", setup=trainer_pt_garbled, id="--resume corrupt trainer.pt"),
    resume("train.lr=0.5", expect="train.lr"),
    resume("model.core.d_model=32", expect="model.core.d_model"),
    resume("train.steps=2", expect="train.steps", id="--resume RUN train.steps=2 after 4 steps"),
    # -- evaluate ------------------------------------------------------------------------------------------------
    cli("evaluate", "{tmp}/not_a_run", setup=not_a_run, expect="run folder", id="evaluate NOT_A_RUN"),
    cli("evaluate", "{tmp}/missing_run", expect=("missing_run", "run folder|does not exist"),
        id="evaluate MISSING_FOLDER"),
    cli("evaluate", "{run}", setup=weights_truncated, expect="model.safetensors", id="evaluate truncated weights"),
    cli("evaluate", "{run}", setup=latest_json_not_utf8, expect="latest.json", id="evaluate latest.json not UTF-8"),
    # -- generate ------------------------------------------------------------------------------------------------
    cli("generate", "{trun}", "--top-k", "-5", expect="--top-k", id="generate --top-k -5"),
    cli("generate", "{trun}", "--top-k", "abc", expect="--top-k", id="generate --top-k abc (argparse)"),
    cli("generate", "{trun}", "--temperature", "0", expect="--temperature", id="generate --temperature 0"),
    cli("generate", "{trun}", "--top-p", "0", expect="--top-p", id="generate --top-p 0"),
    cli("generate", "{trun}", "--num-beams", "0", expect="--num-beams", id="generate --num-beams 0"),
    cli("generate", "{trun}", "--max-new-tokens", "-1", expect="--max-new-tokens", id="generate --max-new-tokens -1"),
    cli("generate", "{trun}", "--num-samples", "0", expect="--num-samples", id="generate --num-samples 0"),
    cli("generate", "{trun}", "--device", "cuda", expect="cuda", id="generate --device cuda", marks=NO_GPU),
    cli("generate", "{srun}", expect=("writes no text", "xformer forecast"), id="generate SERIES_RUN"),
    cli("generate", "{vrun}", expect=("writes no text", "xformer predict"), id="generate IMAGE_RUN"),
    cli("generate", "{tmp}/missing_run", expect=("missing_run", "does not exist"), id="generate MISSING_FOLDER"),
    # -- forecast ------------------------------------------------------------------------------------------------
    cli("forecast", "{srun}", "--data", "{csv}", "--out", "{tmp}/existing_folder", setup=existing_folder,
        expect="existing_folder", id="forecast --out EXISTING_FOLDER"),
    cli("forecast", "{srun}", "--data", "{csv}", "--at", "not-a-date", expect="not-a-date",
        id="forecast --at not-a-date"),
    cli("forecast", "{srun}", "--data", "{csv}", "--at", "2099-01-01", expect="2099", id="forecast --at outside"),
    cli("forecast", "{srun}", "--data", "{csv}", "--freq", "zzz", expect="zzz", id="forecast --freq zzz"),
    cli("forecast", "{srun}", "--data", "{tmp}/missing.csv", expect="missing.csv", id="forecast --data MISSING"),
    cli("forecast", "{srun}", "--data", "{short_csv}", expect="short.csv", id="forecast --data TOO_SHORT"),
    cli("forecast", "{srun}", "--data", "{other_columns_csv}", expect="load", id="forecast --data OTHER_COLUMNS"),
    cli("forecast", "{srun}", "--data", "{binary_csv}", expect="binary.csv", id="forecast --data BINARY"),
    cli("forecast", "{run}", "--data", "{csv}", expect="forecasting run|series", id="forecast TEXT_RUN"),
    # -- attention -----------------------------------------------------------------------------------------------
    cli("attention", "{trun}", expect="image", forbid="no test split", id="attention TEXT_RUN"),
    cli("attention", "{srun}", expect="image", id="attention SERIES_RUN"),
    cli("attention", "{vrun}", "--index", "999", expect="--index", id="attention --index 999"),
    cli("attention", "{vrun}", "--index", "-1", expect="--index", id="attention --index -1"),
    cli("attention", "{tmp}/missing_run", expect=("missing_run", "does not exist"), id="attention MISSING_FOLDER"),
    # -- predict, evaluate --checkpoint ----------------------------------------------------------------------------
    cli("predict", "{srun}", "{tmp}", expect=("is not a classifier", "xformer forecast"), id="predict SERIES_RUN"),
    cli("predict", "{trun}", "a text", expect=("is not a classifier", "xformer generate"), id="predict TEXT_LM_RUN"),
    cli("predict", "{vrun}", "{tmp}/digit.png", "--top-k", "0", setup=an_image, expect="--top-k",
        id="predict --top-k 0"),
    cli("predict", "{vrun}", "{tmp}/broken.png", setup=broken_image, expect="broken.png",
        id="predict UNREADABLE_IMAGE"),
    cli("predict", "{vrun}", "{tmp}/digit.png", "--out", "{tmp}", setup=an_image, expect=("--out", "folder"),
        id="predict --out FOLDER"),
    cli("predict", "{vrun}", "{tmp}/missing.png", expect="missing.png", id="predict MISSING_IMAGE"),
    cli("predict", "{vrun}", "{tmp}/digit.png", "--out", "{tmp}/digit.png", "--overwrite", setup=an_image,
        expect="one of the inputs", id="predict --out THE_INPUT --overwrite"),
    cli("predict", "{vrun}", "{tmp}", "--out", "{tmp}/digit.png", "--overwrite", setup=an_image,
        expect="one of the inputs", id="predict FOLDER --out AN_IMAGE_IN_IT --overwrite"),
    cli("predict", "{vrun}", "{tmp}/digit.png", "--out", "{vrun}/classes.json", "--overwrite", setup=an_image,
        expect="file of the run folder", id="predict --out RUN/classes.json --overwrite"),
    cli("predict", "{vrun}", "{tmp}/digit.png", "--out", "{tmp}/old.csv", setup=an_image_and_old_predictions,
        expect=("old.csv already exists", "--overwrite"), id="predict --out EXISTING_FILE"),
    cli("attention", "{vrun}", "--image", "{tmp}/digit.png", "--out", "{tmp}/digit.png", "--overwrite",
        setup=an_image, expect="one of the inputs", id="attention --image FILE --out FILE"),
    cli("attention", "{vrun}", "--out", "{tmp}/grid.md", expect=r"\.png", id="attention --out NOT_A_FIGURE"),
    cli("attention", "{vrun}", "--out", "{vrun}/config.png", "--overwrite", setup=lambda ctx: (
        ctx.path("vrun") / "config.png").write_bytes(b"the run's own"), expect="file of the run folder",
        id="attention --out AN_EXISTING_RUN_FILE"),
    cli("evaluate", "{run}", "--checkpoint", "step_99", expect=("step_99", "step_"), id="evaluate --checkpoint step_99"),
    cli("predict", "{vrun}", "{tmp}/digit.png", setup=digit_and(classes_json_cut_short),
        expect=("classes.json", "not valid JSON", "class_names"), id="predict RUN_WITH_CLASSES_JSON_CUT_SHORT"),
    cli("predict", "{vrun}", "{tmp}/digit.png", setup=digit_and(classes_json_three_names),
        expect=("classes.json", "3 class names", "10 classes"), id="predict RUN_WITH_3_OF_10_CLASS_NAMES"),
    cli("attention", "{vrun}", "--image", "{tmp}/digit.png", "--out", "{tmp}/a.png",
        setup=digit_and(classes_json_cut_short), expect=("classes.json", "not valid JSON"),
        id="attention --image RUN_WITH_CLASSES_JSON_CUT_SHORT"),
    cli("predict", "{vrun}", "{tmp}/digit.png", setup=digit_and(preprocess_json_without_channels),
        expect=("preprocess.json", "channels"), id="predict RUN_WITH_PREPROCESS_JSON_WITHOUT_CHANNELS"),
    # -- distillation: the teacher must take the student's images ------------------------------------------------
    distill("data.args.image_size=16", expect=(r"\(1, 8, 8\)", r"\(1, 16, 16\)", "image_size"),
            id="distill 8x8 teacher for 16x16 students"),
    distill("distill.alpha=2", expect="distill.alpha", id="distill.alpha=2"),
    # -- --threads ------------------------------------------------------------------------------------------------
    cli("train", "{reverse}", *TINY, "--out", "{new}", "--threads", "0", expect=("--threads", ">= 1"),
        id="train --threads 0"),
    cli("evaluate", "{run}", "--threads", "-1", expect=("--threads", ">= 1"), id="evaluate --threads -1"),
    cli("predict", "{vrun}", "{tmp}/digit.png", "--threads", "many", setup=an_image, expect=("--threads", "many"),
        id="predict --threads many"),
    cli("compare", "--out", "{tmp}/c", *SMALL_COMPARE, "--threads", "0", expect="--threads",
        id="compare --threads 0"),
    # -- compare, tokenizer, demo --------------------------------------------------------------------------------
    cli("compare", "--out", "{tmp}/report", *SMALL_COMPARE, setup=old_report, expect="--overwrite",
        id="compare --out EXISTING_REPORT"),
    cli("compare", "--domains", "nonsense", "--out", "{tmp}/c", expect="nonsense", id="compare --domains nonsense"),
    cli("compare", "--steps", "0", "--out", "{tmp}/c", expect="--steps", id="compare --steps 0"),
    cli("compare", "--series-data", "{tmp}/missing.csv", "--out", "{tmp}/c", expect="missing.csv",
        id="compare --series-data MISSING"),
    cli("compare", "--out", "{tmp}/c", *SMALL_COMPARE, "--batch-size", "0", expect="batch.size",
        id="compare --batch-size 0"),
    cli("tokenizer", "train", "{tmp}/missing.txt", "--vocab-size", "100", "--out", "{tmp}/tok",
        expect="missing.txt", id="tokenizer train MISSING_FILE"),
    cli("tokenizer", "train", "{text}", "--vocab-size", "0", "--out", "{tmp}/tok", expect="vocab.size",
        id="tokenizer train --vocab-size 0"),
    cli("tokenizer", "train", "{binary}", "--vocab-size", "100", "--out", "{tmp}/tok", expect="binary.bin",
        id="tokenizer train BINARY_FILE"),
    cli("tokenizer", "train", "{text}", "--vocab-size", "100", "--out", "{run}", expect="--out",
        id="tokenizer train --out RUN_FOLDER"),
    cli("demo", "--steps", "0", expect="steps", id="demo --steps 0"),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_refused_in_one_line(case: Case, session, tmp_path, monkeypatch, capfd, bounded):
    ctx = Ctx(tmp_path, session)
    argv = [arg.format_map(ctx) for arg in case.argv]
    if case.setup is not None:
        case.setup(ctx)
    monkeypatch.chdir(tmp_path)  # whatever a command writes by default lands here
    before = snapshot(tmp_path)
    capfd.readouterr()
    start = time.perf_counter()
    with bounded(seconds=60, memory_gib=4, max_new_processes=2):
        rc = run_main(argv)
    seconds = time.perf_counter() - start
    assert_refused(rc, capfd.readouterr().err, *case.expect, forbid=case.forbid)
    assert_nothing_lost(tmp_path, before, ctx.copies)
    if case.fresh:
        never_trained(Path(ctx["new"]))
    if case.max_seconds is not None:
        assert seconds < case.max_seconds, f"refused after {seconds:.1f} s, not at once"


def test_the_catalogue_is_long_enough():
    assert len(CASES) >= 60


# ---- the console script behaves the same -----------------------------------------------------------------------
@pytest.mark.parametrize("argv, expect, setup", [
    pytest.param(["train", "{reverse}", "train.lr=-1", "--out", "{new}"], "train.lr", None, id="train.lr=-1"),
    pytest.param(["train", "--resume", "{tmp}/missing_run"], "run folder", None, id="--resume MISSING"),
    pytest.param(["train", "--resume", "{run}"], "latest.json", latest_json_not_utf8, id="latest.json not UTF-8"),
])
def test_console_script_refuses_the_same_way(argv, expect, setup, session, tmp_path):
    ctx = Ctx(tmp_path, session)
    argv = [arg.format_map(ctx) for arg in argv]
    if setup is not None:
        setup(ctx)
    before = snapshot(tmp_path)
    result = subprocess.run([sys.executable, "-m", "xformer", *argv], capture_output=True, text=True, cwd=tmp_path,
                            timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert_refused(result.returncode, result.stderr, expect)
    assert_nothing_lost(tmp_path, before, ctx.copies)


# ---- what a run folder goes through besides bad values ----------------------------------------------------------
def metrics_lines(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def test_resume_with_more_steps_continues_the_schedule_planned_for_them(tmp_path):
    """`--resume RUN train.steps=N`: the schedule is rebuilt for the new length as if the run had been
    planned for N steps from the start, and continues from the current step."""
    recipe = ["train", str(TASKS / "reverse.yaml"), *TINY, "train.log_every=1", "train.eval_every=3",
              "train.warmup_steps=0", "train.schedule=cosine"]
    run, fresh = tmp_path / "run", tmp_path / "fresh"
    assert run_main([*recipe, "train.steps=6", "--out", str(run)]) == 0
    assert run_main(["train", "--resume", str(run), "train.steps=10"]) == 0
    assert run_main([*recipe, "train.steps=10", "--out", str(fresh)]) == 0

    lr = {r["step"]: r["lr"] for r in metrics_lines(run) if "lr" in r}
    planned = {r["step"]: r["lr"] for r in metrics_lines(fresh) if "lr" in r}
    assert sorted(lr) == list(range(1, 11))
    for step in range(7, 11):
        assert lr[step] == pytest.approx(planned[step], rel=1e-9, abs=1e-15), (step, lr, planned)
    assert all(lr[s + 1] <= lr[s] for s in range(7, 10)), f"cosine must not rise again: {lr}"
    assert max(lr[s] for s in range(7, 11)) < 0.5 * max(lr.values()), f"the lr jumped back to its peak: {lr}"
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["steps"] == 10
    assert json.loads((run / "metrics.json").read_text())["steps"] == 10


def test_overwrite_replaces_the_old_run_cleanly(session, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(session.runs["run"], run)
    old = snapshot(run)
    argv = ["train", session.inputs["reverse"], *TINY, "train.steps=3", "train.eval_every=3", "--out", str(run),
            "--overwrite"]
    assert run_main(argv) == 0
    new = snapshot(run)
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*")) == ["step_00000003"]
    steps = [r["step"] for r in metrics_lines(run)]
    assert max(steps) == 3 and sum("train_loss" in r for r in metrics_lines(run)) == 3, steps
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["steps"] == 3
    # data_split.json records the data's split, the same for the same data: written anew, equal by content
    left = sorted(p for p in old if new.get(p) == old[p] and Path(p).name != "data_split.json")
    assert not left, f"files of the old run left mixed in: {left}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"], "a backup of the old run was left behind"


@pytest.mark.parametrize("key, recipe, bad, expect", [
    pytest.param("srun", "series", "data.args.horizon=0", "horizon", id="series data.args.horizon=0"),
    pytest.param("run", "reverse", "train.early_stopping.metric=val_nonsense", "val_nonsense",
                 id="train.early_stopping.metric=val_nonsense"),
])
def test_overwrite_that_fails_before_training_keeps_the_old_run(key, recipe, bad, expect, session, tmp_path, capfd):
    run = tmp_path / "run"
    shutil.copytree(session.runs[key], run)
    before = snapshot(tmp_path)
    tiny = TINY if recipe == "reverse" else []
    capfd.readouterr()
    rc = run_main(["train", session.inputs[recipe], *tiny, bad, "--out", str(run), "--overwrite"])
    assert_refused(rc, capfd.readouterr().err, expect)
    assert_nothing_lost(tmp_path, before, [run])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"], "a backup of the old run was left behind"


def test_overwrite_that_fails_during_training_brings_the_old_run_back(session, tmp_path, capfd):
    """The old run is moved aside when the new one starts writing; the new one diverges at step 2, before its
    first checkpoint: the new folder goes and the old one comes back, byte for byte."""
    run = tmp_path / "run"
    shutil.copytree(session.runs["run"], run)
    before = snapshot(tmp_path)
    capfd.readouterr()
    rc = run_main(["train", session.inputs["reverse"], *TINY, "train.lr=1e30", "train.clip=null",
                   "train.warmup_steps=0", "--out", str(run), "--overwrite", "--quiet"])
    assert_refused(rc, capfd.readouterr().err, "loss is nan", "no checkpoint")
    assert_nothing_lost(tmp_path, before, [run])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"], "a backup of the old run was left behind"


def dead_pid() -> int:
    pid = 4_000_000
    while Path(f"/proc/{pid}").exists():
        pid -= 1
    return pid


def test_temporaries_of_a_save_killed_midway_are_removed_by_the_next_resume(session, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(session.runs["run"], run)
    pid = dead_pid()
    half_saved = run / "checkpoints" / f".step_00000006.tmp{pid}"
    half_saved.mkdir()
    (half_saved / "model.safetensors").write_bytes(b"\x00" * 100)
    (run / "checkpoints" / f".latest.json.tmp{pid}").write_text('{"latest": "step_0000')
    assert run_main(["train", "--resume", str(run), "train.steps=6"]) == 0
    left = sorted(p.name for p in (run / "checkpoints").iterdir() if ".tmp" in p.name)
    assert not left, f"temporaries of the killed save are still there: {left}"
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["latest"] == "step_00000006"


def test_a_torn_last_metrics_line_does_not_stop_a_resume(session, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(session.runs["run"], run)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "train_lo')  # the process died mid-write
    assert run_main(["train", "--resume", str(run), "train.steps=6"]) == 0
    text = (run / "metrics.jsonl").read_text()
    assert text.endswith("\n")
    rows = [json.loads(line) for line in text.splitlines()]  # every line is JSON again
    assert {5, 6} <= {r["step"] for r in rows}
