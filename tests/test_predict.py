"""Issue 15, part 3: the workflow a timm user expects. `xformer predict` on new image files,
`xformer evaluate --checkpoint`, top-5 accuracy, evaluation subsets across classes, an image_folder
without test/, `xformer attention --image`, and the patch tokenizer's guard against silly token counts."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import torch
import yaml

from xformer.cli import main

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

CLASSES = ("cat", "dog", "eel")
COLOURS = {"cat": (230, 30, 30), "dog": (30, 230, 30), "eel": (30, 30, 230)}


def write_folder(root: Path, splits=(("train", 6), ("val", 3), ("test", 3)), classes=CLASSES, size=12) -> None:
    """root/<split>/<class>/<i>.png: each class a flat colour (plus a little noise), so a tiny model learns it."""
    from PIL import Image

    rng = torch.Generator().manual_seed(0)
    for split, n in splits:
        for k, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            colour = COLOURS.get(name, (25 * k % 255, 90, 255 - 25 * k % 255))
            for i in range(n):
                jitter = int(torch.randint(0, 20, (1,), generator=rng))
                Image.new("RGB", (size + i % 3, size), tuple(min(255, c + jitter) for c in colour)).save(
                    folder / f"{i}.png")


def recipe(root: Path, steps: int = 30, **data_args) -> dict:
    return {
        "model": {"architecture": "encoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
                  "tokenizer": {"name": "image_patches", "args": {"patch_size": 4}},
                  "head": {"name": "classification"}},
        "data": {"name": "image_folder", "args": {"root": str(root), "image_size": 8, **data_args}},
        "train": {"steps": steps, "batch_size": 6, "lr": 3e-3, "eval_every": 10, "log_every": 10,
                  "warmup_steps": 0, "keep_last": 5},
    }


def train(tmp: Path, name: str, spec: dict) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp / name
    assert main(["train", str(path), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def image_run(tmp_path_factory) -> tuple[Path, Path]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a module fixture is set up before conftest's one-thread fixture of its first test
    try:
        tmp = tmp_path_factory.mktemp("predict")
        write_folder(tmp / "images")
        return train(tmp, "run", recipe(tmp / "images")), tmp / "images"
    finally:
        torch.set_num_threads(threads)


def read_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_run_saves_its_preprocessing(image_run):
    run, _ = image_run
    spec = json.loads((run / "preprocess.json").read_text())
    assert spec["image_size"] == [8, 8] and spec["channels"] == 3
    assert spec["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert json.loads((run / "classes.json").read_text())["class_names"] == list(CLASSES)


def test_predict_a_folder_writes_csv_with_top_k(image_run, tmp_path, capsys):
    run, images = image_run
    out = tmp_path / "preds.csv"
    assert main(["predict", str(run), str(images / "test"), "--top-k", "2", "--out", str(out)]) == 0
    rows = read_csv(out.read_text())
    assert list(rows[0]) == ["file", "class", "probability", "class_1", "probability_1", "class_2", "probability_2"]
    assert len(rows) == 9
    for row in rows:
        assert row["class"] == row["class_1"] and row["class"] in CLASSES
        p1, p2 = float(row["probability_1"]), float(row["probability_2"])
        assert 0 <= p2 <= p1 <= 1 and p1 + p2 <= 1 + 1e-5
    # the tiny model learned the colours: most test images get their folder's class
    right = sum(Path(r["file"]).parent.name == r["class"] for r in rows)
    assert right >= 6, rows


def test_predict_files_to_stdout_and_top_k_beyond_the_classes(image_run, capsys):
    run, images = image_run
    files = [str(images / "test" / "cat" / "0.png"), str(images / "val" / "dog" / "1.png")]
    assert main(["predict", str(run), *files, "--top-k", "5", "--batch-size", "1"]) == 0
    rows = read_csv(capsys.readouterr().out)
    assert [r["file"] for r in rows] == files
    total = sum(float(rows[0][f"probability_{j}"]) for j in (1, 2, 3))
    assert total == pytest.approx(1, abs=1e-4)  # all 3 classes listed, and no empty columns 4 and 5 (timm)
    assert list(rows[0])[-2:] == ["class_3", "probability_3"]


def test_predict_matches_the_runs_own_evaluation(image_run):
    """The same image, through predict's preprocessing and through the run's evaluation split, is the same tensor."""
    from xformer.predict import image_classifier_info, load_image
    from xformer.train.run import load_run

    run, _ = image_run
    _, _, data = load_run(run)
    spec, _ = image_classifier_info(run)
    subset = data.test.source  # the seeded order over the ImageFolder
    folder, index = subset.dataset, subset.indices[0]
    path = folder.samples[index][0]
    assert torch.allclose(load_image(path, spec), data.test[0]["images"], atol=1e-6)


def test_predict_digits_run_falls_back_to_the_data_config(tmp_path, capsys):
    """A digits run (8x8 grey) without preprocess.json (an older run): the data config gives the transform."""
    from PIL import Image

    tasks = Path(__file__).resolve().parents[1] / "tasks"
    run = tmp_path / "digits"
    assert main(["train", str(tasks / "vit_digits.yaml"), "data.args.affine=false", "train.steps=2",
                 "train.eval_every=2", "train.log_every=1", "train.warmup_steps=0", "train.batch_size=16",
                 "model.tokenizer.args.patch_size=4", "model.core.d_model=16", "model.core.n_layers=1",
                 "model.core.n_heads=2", "model.core.d_ff=32", "--out", str(run)]) == 0
    (run / "preprocess.json").unlink()
    capsys.readouterr()
    Image.new("L", (8, 8), 128).save(tmp_path / "grey.png")
    Image.new("RGB", (20, 20), (10, 200, 30)).save(tmp_path / "colour.png")
    assert main(["predict", str(run), str(tmp_path / "grey.png"), str(tmp_path / "colour.png"), "--top-k", "3"]) == 0
    rows = read_csv(capsys.readouterr().out)
    assert len(rows) == 2 and all(r["class"] in [str(k) for k in range(10)] for r in rows)


def test_unreadable_image_is_one_line_naming_it(image_run, tmp_path, capsys):
    run, _ = image_run
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    assert main(["predict", str(run), str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "broken.png" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, expect", [
    (["--top-k", "0"], "--top-k"),
    (["--out", "{tmp}"], "folder"),
    (["--batch-size", "0"], "--batch-size"),
])
def test_bad_predict_options(image_run, tmp_path, capsys, argv, expect):
    run, images = image_run
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main(["predict", str(run), str(images / "test"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expect in err


def test_evaluate_checkpoint_best_last_and_step(image_run, capsys):
    run, _ = image_run
    capsys.readouterr()
    pointer = json.loads((run / "checkpoints" / "latest.json").read_text())
    best = main(["evaluate", str(run)]), json.loads(capsys.readouterr().out)
    assert best[0] == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert best[1]["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert main(["evaluate", str(run), "--checkpoint", "last"]) == 0
    last = json.loads(capsys.readouterr().out)
    step = int(pointer["latest"][len("step_"):])
    assert main(["evaluate", str(run), "--checkpoint", f"step_{step}"]) == 0
    assert json.loads(capsys.readouterr().out) == last
    assert main(["evaluate", str(run), "--checkpoint", "step_99"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "step_99" in err and f"step_{step}" in err


def test_top5_accuracy_only_with_more_than_five_classes(image_run, tmp_path):
    run, _ = image_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert "test_accuracy" in metrics and "test_top5_accuracy" not in metrics  # 3 classes
    many = tuple(f"c{k}" for k in range(7))
    write_folder(tmp_path / "many", (("train", 2), ("val", 1), ("test", 1)), many)
    metrics = json.loads((train(tmp_path, "many_run", recipe(tmp_path / "many", steps=2)) / "metrics.json").read_text())
    assert 0 <= metrics["test_accuracy"] <= metrics["test_top5_accuracy"] <= 1
    assert metrics["val_top5_accuracy"] >= metrics["val_accuracy"]


def test_evaluation_subsets_hold_every_class_and_full_splits_are_unchanged(image_run):
    from xformer.data.registry import build_data
    from xformer.data.image_augment import ImageCollate
    from torch.utils.data import DataLoader

    _, images = image_run
    data = build_data("image_folder", {"root": str(images), "image_size": 8})
    first = next(iter(DataLoader(data.test, batch_size=4, collate_fn=ImageCollate())))["labels"]
    assert len(set(first.tolist())) >= 2, first  # a class-sorted folder would give four of class 0
    labels = sorted(int(data.test[i]["labels"]) for i in range(len(data.test)))
    assert labels == sorted(data.test.source.dataset.targets)  # the same items, only reordered
    again = build_data("image_folder", {"root": str(images), "image_size": 8})
    assert [int(again.test[i]["labels"]) for i in range(len(again.test))] == \
           [int(data.test[i]["labels"]) for i in range(len(data.test))]  # the order is fixed


def test_image_folder_without_test_split(tmp_path):
    write_folder(tmp_path / "images", (("train", 4), ("val", 2)))
    run = train(tmp_path, "no_test", recipe(tmp_path / "images", steps=2))
    metrics = json.loads((run / "metrics.json").read_text())
    assert "val_accuracy" in metrics and not any(k.startswith("test_") for k in metrics)


def test_attention_of_an_image_file_is_titled_with_its_prediction(image_run, tmp_path, capsys, monkeypatch):
    import xformer.analysis.attention_maps as maps

    run, images = image_run
    titles = []
    real = maps.save_attention_grid
    monkeypatch.setattr(maps, "save_attention_grid", lambda *a, **k: titles.append(a[3]) or real(*a, **k))
    out = tmp_path / "att.png"
    assert main(["attention", str(run), "--image", str(images / "test" / "dog" / "0.png"), "--out", str(out)]) == 0
    assert out.is_file() and out.stat().st_size > 0
    name, prob = titles[0].split(" (")
    assert name in CLASSES and 0 < float(prob.rstrip(")")) <= 1
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    assert main(["attention", str(run), "--image", str(bad)]) == 2
    assert "bad.png" in capsys.readouterr().err


def test_patch_token_count_guard_names_sizes_and_a_patch_size_that_fits():
    from xformer.config import ConfigError
    from xformer.core import CoreConfig
    from xformer.tokenizers.image import image_patches_tokenizer

    core = CoreConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32)
    with pytest.raises(ConfigError) as e:
        image_patches_tokenizer(core, image_size=224, patch_size=2)
    message = str(e.value)
    assert "224x224" in message and "2x2" in message and "12544" in message and "patch_size=14" in message
    assert len(message.splitlines()) == 1
    with pytest.raises(ConfigError, match="patch_size=32 "):  # not 31: the patch size named must tile 512
        image_patches_tokenizer(core, image_size=512, patch_size=2)
    assert image_patches_tokenizer(core, image_size=512, patch_size=32).grid == (16, 16)
    assert image_patches_tokenizer(core, image_size=64, patch_size=1).grid == (64, 64)  # 4,096: at the limit


@pytest.mark.parametrize("text, expect", [
    ('{"class_names": ["cat", "dog", "eel"', r"is not valid JSON \(Expecting .* at line 1 column \d+\)"),
    ("\udcff".encode("utf-8", "surrogateescape"), r"is not UTF-8 text"),
    ('["cat", "dog", "eel"]', r'has no "class_names" list \(it holds a JSON list\)'),
    ('{"names": ["cat", "dog", "eel"]}', r"has no \"class_names\" list \(it holds keys \['names'\]\)"),
    ('{"class_names": "cat,dog,eel"}', r'"class_names" must be a list of strings, got "cat,dog,eel"'),
    ('{"class_names": ["cat", 1, "eel"]}', r'"class_names" must be a list of strings'),
    ('{"class_names": ["cat", "dog", "cat"]}', r"names 'cat' more than once"),
    ('{"class_names": ["cat", "dog"]}', r"lists 2 class names but the model predicts 3 classes"),
])
@pytest.mark.parametrize("command", ["predict", "attention"])
def test_a_malformed_classes_json_is_one_line_naming_it(image_run, tmp_path, capsys, text, expect, command):
    """The run folder's classes.json, broken by hand: one line naming the file, what is wrong and what it should
    hold, exit 2; the file is left as it was."""
    import re
    import shutil

    run, images = image_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    names = copy / "classes.json"
    names.write_bytes(text if isinstance(text, bytes) else text.encode())
    before = names.read_bytes()
    image = str(images / "test" / "dog" / "0.png")
    argv = ["predict", str(copy), image] if command == "predict" else \
        ["attention", str(copy), "--image", image, "--out", str(tmp_path / "a.png")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert str(names) in err and re.search(expect, err), err
    assert '{"class_names": ["cat", "dog", ...]} with 3 names' in err, err  # the fix: what the file should hold
    assert names.read_bytes() == before
    assert not (tmp_path / "a.png").exists()


@pytest.mark.parametrize("edit, expect", [
    (lambda spec: "{ nope", r"is not valid JSON"),
    (lambda spec: {k: v for k, v in spec.items() if k != "channels"}, r'"channels" must be 1 or 3, got null'),
    (lambda spec: {**spec, "image_size": 8}, r'"image_size" must be \[height, width\] in pixels, got 8'),
    (lambda spec: {**spec, "mean": [0.5]}, r'"mean" must be null or 3 numbers, got \[0.5\]'),
    (lambda spec: {**spec, "std": [0.5, 0, 0.5]}, r'"std" must be > 0'),
    (lambda spec: {**spec, "resize": "nearest"}, r'"resize" must be "antialias" or "bilinear", got "nearest"'),
    (lambda spec: {**spec, "source_size": 8}, r'"source_size" must be null or \[height, width\] in pixels, got 8'),
])
def test_a_malformed_preprocess_json_is_one_line_naming_it(image_run, tmp_path, capsys, edit, expect):
    import re
    import shutil

    run, images = image_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    path = copy / "preprocess.json"
    new = edit(json.loads(path.read_text()))
    path.write_text(new if isinstance(new, str) else json.dumps(new))
    assert main(["predict", str(copy), str(images / "test")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert str(path) in err and re.search(expect, err), err


def test_a_well_formed_classes_json_edited_by_hand_names_the_predictions(image_run, tmp_path, capsys):
    """Renaming the classes in classes.json (same count, new names) renames the predictions, nothing else."""
    import shutil

    run, images = image_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert main(["predict", str(run), str(images / "test"), "--top-k", "1"]) == 0
    original = read_csv(capsys.readouterr().out)
    renamed = {"cat": "Felis", "dog": "Canis", "eel": "Anguilla"}
    (copy / "classes.json").write_text(json.dumps({"class_names": [renamed[c] for c in CLASSES]}))
    assert main(["predict", str(copy), str(images / "test"), "--top-k", "1"]) == 0
    rows = read_csv(capsys.readouterr().out)
    assert [r["class"] for r in rows] == [renamed[r["class"]] for r in original]
    assert [r["probability"] for r in rows] == [r["probability"] for r in original]


def test_outputs_replace_a_file_only_when_asked(image_run, tmp_path, capsys):
    run, images = image_run
    image = str(images / "test" / "cat" / "0.png")
    out = tmp_path / "preds.csv"
    assert main(["predict", str(run), image, "--out", str(out)]) == 0
    first = out.read_text()
    out.write_text("my own notes")
    assert main(["predict", str(run), image, "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == "my own notes"
    assert main(["predict", str(run), image, "--out", str(out), "--overwrite"]) == 0
    assert out.read_text() == first
    grid = run / "attention_0.png"  # the default file of `attention --image .../0.png`, in the run folder
    grid.unlink(missing_ok=True)
    assert main(["attention", str(run), "--image", image]) == 0 and grid.is_file()
    grid.write_bytes(b"an old grid")
    assert main(["attention", str(run), "--image", image]) == 2
    assert "--overwrite" in capsys.readouterr().err and grid.read_bytes() == b"an old grid"
    assert main(["attention", str(run), "--image", image, "--overwrite"]) == 0
    assert grid.read_bytes().startswith(b"\x89PNG")
    grid.unlink()


def test_overrides_may_follow_the_options(image_run, tmp_path):
    run, images = image_run
    spec = tmp_path / "r.yaml"
    spec.write_text(yaml.safe_dump(recipe(images, steps=30)))
    assert main(["train", str(spec), "--out", str(tmp_path / "r"), "--quiet", "train.steps=2"]) == 0
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["steps"] == 2
    with pytest.raises(SystemExit) as stop:  # argparse's own errors exit (status 2, one line)
        main(["train", str(spec), "--out", str(tmp_path / "r2"), "--quiet", "not-an-override"])
    assert stop.value.code == 2 and not (tmp_path / "r2").exists()


def truncate_a_noisy_png(path: Path) -> None:
    """``path``: the first 2,000 bytes of a 64x64 PNG of noise, a file whose header reads (so the check of every
    header before training passes it) and whose pixels do not (so it fails where it is first decoded)."""
    from PIL import Image

    noise = torch.randint(0, 256, (64, 64, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    Image.fromarray(noise.numpy()).save(path)
    path.write_bytes(path.read_bytes()[:2000])
    with Image.open(path) as image:
        assert image.size == (64, 64)
        with pytest.raises(OSError):
            image.load()


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_folder(tmp_path, capsys):
    """An image that decodes badly is met in the first steps: the folder goes, so the same command runs again
    once the image is fixed (and is not refused as 'already holds files')."""
    write_folder(tmp_path / "images", (("train", 4), ("val", 2)))
    bad = tmp_path / "images" / "train" / "dog" / "0.png"
    good = bad.read_bytes()
    truncate_a_noisy_png(bad)
    spec = recipe(tmp_path / "images", steps=4)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(spec))
    argv = ["train", str(path), "--out", str(tmp_path / "run"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "0.png" in err and "--resume" not in err and not (tmp_path / "run").exists()
    bad.write_bytes(good)
    assert main(argv) == 0


def test_a_bad_test_image_met_after_training_names_the_resume_that_finishes_the_run(tmp_path, capsys):
    write_folder(tmp_path / "images", (("train", 4), ("val", 2), ("test", 2)))
    bad = tmp_path / "images" / "test" / "eel" / "1.png"
    good = bad.read_bytes()
    truncate_a_noisy_png(bad)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe(tmp_path / "images", steps=4)))
    assert main(["train", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "1.png" in err and f"xformer train --resume {tmp_path / 'run'}" in err
    bad.write_bytes(good)
    assert main(["train", "--resume", str(tmp_path / "run"), "--quiet"]) == 0
    assert "test_accuracy" in json.loads((tmp_path / "run" / "metrics.json").read_text())


def test_evaluate_on_a_folder_of_test_images_only(image_run, tmp_path, capsys):
    import shutil

    run, images = image_run
    shutil.copytree(images / "test", tmp_path / "new" / "test")
    assert main(["evaluate", str(run), f"data.args.root={tmp_path / 'new'}"]) == 0
    assert main(["evaluate", str(run)]) == 0  # the run's own test split: the same images
    outputs = capsys.readouterr().out
    first, second = [json.loads(t) for t in _json_objects(outputs)]
    assert first["test_accuracy"] == second["test_accuracy"] and "val_accuracy" not in first
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe(tmp_path / "new", steps=2)))
    assert main(["train", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err  # what it is, and how to lay it out for training
    assert "has no train/ folder, so it is data to evaluate a run on" in err and "prepare.py" in err, err


def _json_objects(text: str) -> list[str]:
    """The JSON objects printed one after another (each `{ ... }` over several lines)."""
    objects, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "{":
            start = i if depth == 0 else start
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                objects.append(text[start:i + 1])
    return objects


def test_one_mean_and_std_stand_for_every_channel_and_images_may_be_oblong(tmp_path, capsys):
    write_folder(tmp_path / "images", (("train", 4), ("val", 2)))
    spec = recipe(tmp_path / "images", steps=2, mean=[0.5], std=[0.25])
    spec["data"]["args"]["image_size"] = [8, 12]
    run = train(tmp_path, "oblong", spec)
    preprocess = json.loads((run / "preprocess.json").read_text())
    assert preprocess["mean"] == [0.5] * 3 and preprocess["std"] == [0.25] * 3 and preprocess["image_size"] == [8, 12]
    capsys.readouterr()
    assert main(["predict", str(run), str(tmp_path / "images" / "val")]) == 0
    assert len(read_csv(capsys.readouterr().out)) == 6


def test_a_relative_data_root_is_recorded_absolute_so_the_run_resumes_from_anywhere(tmp_path, monkeypatch):
    write_folder(tmp_path / "images", (("train", 4), ("val", 2)))
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe(Path("images"), steps=2)))  # data.args.root: images (relative)
    assert main(["train", str(path), "--out", "run", "--quiet"]) == 0
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"]["args"]["root"]
    assert saved == str(tmp_path / "images")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["train", "--resume", str(tmp_path / "run"), "train.steps=4", "--quiet"]) == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"] == 4
    assert main(["evaluate", str(tmp_path / "run")]) == 0
    monkeypatch.chdir(tmp_path)  # the relative root again, where it means the same folder: not a change
    assert main(["train", "--resume", "run", "data.args.root=images", "train.steps=6", "--quiet"]) == 0


def test_a_16_bit_grey_image_is_scaled_to_8_bits_not_clipped(image_run, tmp_path):
    """PIL's convert("L") clips a 16-bit grey PNG (mode I;16) at 255: a 0-65535 ramp would come out 99% white."""
    import numpy as np
    from PIL import Image

    from xformer.data.image_augment import convert_image

    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    with Image.open(tmp_path / "ramp16.png") as image:
        assert image.mode == "I;16"
        grey = np.asarray(convert_image(image, "L"), dtype=float)
        rgb = np.asarray(convert_image(image, "RGB"), dtype=float)
    np.testing.assert_allclose(grey, np.floor(ramp / 256), atol=1)  # the ramp, in 8 bits
    assert rgb.shape == (64, 64, 3) and abs(rgb.mean() - 127.5) < 1
    run, _ = image_run
    assert main(["predict", str(run), str(tmp_path / "ramp16.png")]) == 0  # through predict's reader too


@pytest.mark.parametrize("image_size", [4, 6, 8, 16])
def test_a_digit_saved_as_png_predicts_from_the_image_training_saw(tmp_path, image_size):
    """A digits image written as an 8x8 PNG and read back by predict is the digits data's own tensor at every
    ``image_size``: below 8 both average areas (the data once shrank bilinearly, up to 0.30 apart at 6)."""
    from PIL import Image

    from xformer.data.images import default_preprocess, digits
    from xformer.predict import load_image

    eight = digits(val_fraction=0.0).test[0]["images"]  # (1, 8, 8) in [0, 1], 16 grey levels
    pixels = (eight[0] * 255).round().to(torch.uint8).numpy()
    Image.fromarray(pixels, mode="L").save(tmp_path / "digit.png")
    spec = default_preprocess("digits", {"image_size": image_size})  # what a digits run saves as preprocess.json
    ours = load_image(tmp_path / "digit.png", spec)
    assert ours.shape == (1, image_size, image_size)
    assert torch.allclose(ours, digits(image_size=image_size, val_fraction=0.0).test[0]["images"], atol=1 / 255)
