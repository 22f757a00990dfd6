"""Class predictions for new image files (or texts) from a trained classifier's run folder.

    p = softmax(z),   top-k = the k classes of largest p, best first

The run folder holds everything needed: config.yaml (the model), the best checkpoint (or the one
named), classes.json (the class names) and preprocess.json (the evaluation transform: image size,
channels, mean/std, resize mode; written since the image datasets save it). A run that predates
preprocess.json is treated with the transform its data config implies
(``xformer.data.images.default_preprocess``). Every file goes through exactly the steps the run's
own evaluation images went through: convert to grey / RGB, scale to [0, 1], resize, normalise.

PIL images and numpy arrays held in memory go through the same steps as a file. A text classifier's run is read
the same way (predict_text.py), and a series classifier's (predict_series.py); a masked LM's run fills the [MASK]s
of texts (predict_fill.py).
"""
from __future__ import annotations

import csv
import functools
import io
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from .batch import IMAGES
from .config import ConfigError, load_yaml, read_json
from .errors import a_or_an, qualified_type
from .folders import is_hf_folder, not_a_run_folder
from .metrics_classification import top_classes
from .data.image_augment import eval_transform, shrink_or_stretch
from .data.image_files import (IMAGE_ERRORS, IMAGE_SUFFIXES, images_under, is_in_memory, open_quietly, pil_image,
                                too_large_image)
from .data.images import PREPROCESS_FILE, default_preprocess
from .registry import first_line
from .class_names import read_class_names

CLASSES_FILE = "classes.json"


def image_classifier_info(run_dir: str | Path) -> tuple[dict, list[str]]:
    """(preprocess spec, class names) of an image classifier's run folder; a run of another kind is
    refused in one line."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{not_a_run_folder(run_dir)}; give the --out folder of xformer train")
    config = load_yaml(run_dir / "config.yaml")
    data = config.get("data") or {}
    tokenizer_args = ((config.get("model") or {}).get("tokenizer") or {}).get("args") or {}
    spec = None
    if (run_dir / PREPROCESS_FILE).is_file():
        spec = read_preprocess(run_dir / PREPROCESS_FILE)
    else:
        size = tokenizer_args.get("image_size")
        size = [size, size] if isinstance(size, int) else size
        spec = default_preprocess(str(data.get("name")), data.get("args") or {}, size, tokenizer_args.get("channels"))
    if spec is None:
        name = data.get("name")  # a run of another kind: the command that takes it
        use = (f"; it writes text: xformer generate {run_dir} --prompt TEXT"
               if name in ("text_lm", "token_file", "text_seq2seq") else
               f"; it forecasts: xformer forecast {run_dir} --data FILE" if name in ("ett", "csv_series", "forecaster")
               else "")
        raise ConfigError(f"{run_dir} is not a classifier (its data is {name!r}){use}; predict takes "
                          "the run folder of a classification run (e.g. tasks/vit_digits.yaml, image_folder, "
                          "text_classification, series_classification)")
    n_classes = _n_classes(config.get("model") or {})
    names_file = run_dir / CLASSES_FILE
    if names_file.is_file():
        names = read_class_names(names_file, n_classes)
    else:
        names = [str(k) for k in range(n_classes or 0)]
    return spec, names


def _n_classes(model: dict) -> int | None:
    """head.args.n_classes (an image baseline: baseline.args.n_classes) of a config.yaml's model section."""
    part = model.get("baseline") or model.get("head") or {}
    n = (part.get("args") or {}).get("n_classes")
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def read_preprocess(path: str | Path) -> dict:
    """A run's preprocess.json (``xformer.data.images.preprocess_spec``), checked: a malformed one is one
    ConfigError naming the file, the key and the fix, rather than a KeyError mid-prediction."""
    path = Path(path)
    fix = ('it should read e.g. {"image_size": [32, 32], "channels": 3, "mean": [0.5, 0.5, 0.5], '
           '"std": [0.5, 0.5, 0.5], "resize": "antialias"} (mean/std may be null); correct it, or move it away '
           "to use the transform the run's data config implies")
    spec = read_json(path, fix)
    if not isinstance(spec, dict):
        raise ConfigError(f"{path} holds a JSON {type(spec).__name__}, not an object; {fix}")

    def is_int(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    size, channels = spec.get("image_size"), spec.get("channels")
    if not (isinstance(size, list) and len(size) == 2 and all(is_int(v) and v > 0 for v in size)):
        raise ConfigError(f"{path}: \"image_size\" must be [height, width] in pixels, got {json.dumps(size)}; {fix}")
    if channels not in (1, 3) or not is_int(channels):
        raise ConfigError(f"{path}: \"channels\" must be 1 or 3, got {json.dumps(channels)}; {fix}")
    for key in ("mean", "std"):
        value = spec.get(key)
        if value is not None and not (isinstance(value, list) and len(value) == channels
                                      and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            raise ConfigError(f"{path}: \"{key}\" must be null or {channels} numbers, got {json.dumps(value)}; {fix}")
    if (spec.get("mean") is None) != (spec.get("std") is None):
        raise ConfigError(f"{path}: \"mean\" and \"std\" must both be null or both be given; {fix}")
    if spec.get("std") is not None and any(v <= 0 for v in spec["std"]):
        raise ConfigError(f"{path}: \"std\" must be > 0, got {json.dumps(spec['std'])}; {fix}")
    if spec.get("resize", "antialias") not in ("antialias", "bilinear"):
        raise ConfigError(f"{path}: \"resize\" must be \"antialias\" or \"bilinear\", got "
                          f"{json.dumps(spec.get('resize'))}; {fix}")
    source = spec.get("source_size")
    if source is not None and not (isinstance(source, list) and len(source) == 2 and all(is_int(v) and v > 0
                                                                                        for v in source)):
        raise ConfigError(f"{path}: \"source_size\" must be null or [height, width] in pixels, got "
                          f"{json.dumps(source)}; {fix}")
    return spec


def load_image(path, spec: dict, name: str | None = None) -> torch.Tensor:
    """One image file (or a PIL image or numpy array, called ``name`` in errors) as the run's evaluation transform
    makes it: (C, H, W) float."""
    from PIL import Image

    from .data.image_augment import convert_image

    mode = {1: "L", 3: "RGB"}[int(spec["channels"])]
    if is_in_memory(path):
        name = name or "the image"
        image = convert_image(pil_image(path, name), mode, name)
        return transformed(image, spec)
    try:
        with open_quietly(path) as im:  # as training reads images: PIL's bomb warning silenced, its error ours
            image = convert_image(im, mode, path)
            image.load()
    except FileNotFoundError:
        raise ConfigError(f"image {path} does not exist; give an image file or a folder of them") from None
    except ConfigError:  # a 32-bit image without an 8-bit reading (image_augment.to_8_bits)
        raise
    except Image.DecompressionBombError as e:
        raise ConfigError(too_large_image(path, e)) from None
    except IMAGE_ERRORS as e:
        raise ConfigError(f"cannot read image {path} ({first_line(e)}); give a PNG, JPEG or another image "
                          "file PIL can open") from None
    return transformed(image, spec)


def transformed(image, spec: dict) -> torch.Tensor:
    """A PIL image of the run's mode through its evaluation transform."""
    size = list(spec["image_size"])
    if spec.get("resize") == "bilinear":  # digits: brought to their 8x8 first, then upsampled as at training
        x = transform_of(tuple(size), None, None, resize=False)(image)
        return shrink_or_stretch(shrink_or_stretch(x, spec["source_size"]), size) if spec.get("source_size") \
            else shrink_or_stretch(x, size)
    mean, std = (tuple(v) if isinstance(v, (list, tuple)) else v for v in (spec.get("mean"), spec.get("std")))
    return transform_of(tuple(size), mean, std)(image)


@functools.lru_cache(maxsize=8)
def transform_of(size: tuple, mean: tuple | None, std: tuple | None, resize: bool = True):
    """The evaluation transform, built once per preprocessing rather than once per file (building it costs
    about as much as transforming a small image)."""
    return eval_transform(size, mean, std, resize=resize)


def image_files(inputs: Sequence[str | Path]) -> list[Path]:
    """The files named (and PIL images or numpy arrays, kept as they are), and the image files inside the folders
    named (``IMAGE_SUFFIXES``, hidden files and folders skipped, sorted), as training lists an image folder."""
    files = []
    for item in inputs:
        if is_in_memory(item):  # a notebook's image: predicted as its file would be
            files.append(item)
            continue
        if not isinstance(item, (str, os.PathLike)):
            raise ConfigError(f"{a_or_an(qualified_type(item))} is not an image; give image files or folders, PIL "
                              "images or numpy arrays")
        path = Path(item)
        if path.is_dir():
            found = images_under(path)
            if not found:
                raise ConfigError(f"folder {path} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
            files += found
        elif path.is_file():
            files.append(path)
        elif path.exists():  # a pipe or a device: predict reads each file whole, by name
            raise ConfigError(f"image {path} is neither a file nor a folder; give image files or folders of them")
        else:
            raise ConfigError(f"image {path} does not exist; give image files or folders of them")
    return files


@torch.no_grad()
def predict_images(model: torch.nn.Module, files: Sequence[Path], spec: dict, names: Sequence[str],
                   top_k: int = 5, batch_size: int = 64, device: str | torch.device = "cpu") -> list[dict]:
    """One row per file (or PIL image / numpy array: "file" is then "image N", N its row's position): {"file",
    "class", "probability", "top_k": [(class, probability), ...]}."""
    if top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, got {top_k}")
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    model = model.to(device).eval()
    rows = []
    for start in range(0, len(files), batch_size):
        chunk = files[start:start + batch_size]
        # an image held in memory is named by its row's position
        labels = [f"image {start + i}" if is_in_memory(f) else str(f) for i, f in enumerate(chunk)]
        images = torch.stack([load_image(f, spec, label) for f, label in zip(chunk, labels)]).to(device)
        logits = model({IMAGES: images})["logits"]
        rows += [{"file": label, **top} for label, top in zip(labels, top_classes(logits, names, top_k))]
    return rows


def text_classifier_info(run_dir: Path) -> dict | None:
    """{vocab, names, max_length, text_column} of a text classifier's run folder; None for another run."""
    from .data.vocab import load_vocab

    config = load_yaml(run_dir / "config.yaml")
    data = config.get("data") or {}
    if data.get("name") != "text_classification":
        return None
    summary = read_json(run_dir / "data.json", "train the run again") if (run_dir / "data.json").is_file() else {}
    args = data.get("args") or {}
    names = [str(n) for n in summary.get("labels") or []] or [str(k) for k in range(_n_classes(config["model"]) or 0)]
    return {"vocab": load_vocab(run_dir / "tokenizer"), "names": names,
            "max_length": int(summary.get("max_length") or args.get("max_length", 128)),
            "text_column": args.get("text_column", "text"), "pair_column": args.get("text_pair_column"),
            "label_column": args.get("label_column", "label")}


def predictions_csv(rows: Iterable[dict], top_k: int) -> str:
    """CSV text: file, class, probability, then class_1, probability_1, ... class_k, probability_k (texts: file
    is "FILE:ROW" and the text follows it; series of labelled files: their label follows it); k is at most the
    number of classes (timm's inference.py: a 2-class model's top-5 is its 2 classes, not 3 empty pairs of
    columns)."""
    rows = list(rows)
    top_k = min(top_k, max((len(row["top_k"]) for row in rows), default=top_k))
    texts = bool(rows) and "text" in rows[0]
    pairs = bool(rows) and "text_pair" in rows[0]
    labels = any("label" in row for row in rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file"] + (["text"] if texts else []) + (["text_pair"] if pairs else [])
                    + (["label"] if labels else []) + ["class", "probability"]
                    + [name for j in range(1, top_k + 1) for name in (f"class_{j}", f"probability_{j}")])
    for row in rows:
        cells = [row["file"]] + ([row["text"]] if texts else []) + ([row["text_pair"]] if pairs else []) + \
            ([row.get("label", "")] if labels else []) + [row["class"], f"{row['probability']:.6f}"]
        for j in range(top_k):
            cells += [row["top_k"][j][0], f"{row['top_k'][j][1]:.6f}"] if j < len(row["top_k"]) else ["", ""]
        writer.writerow(cells)
    return out.getvalue()


def predict_run(run_dir: str | Path | Sequence[str | Path], inputs: str | Path | Sequence[str | Path],
                top_k: int = 5, batch_size: int = 64, device: str | torch.device = "cpu",
                checkpoint: str = "best") -> tuple[list[dict], str]:
    """(rows, CSV text) of the run's predictions for the image files / folders, PIL images and numpy arrays (or
    text files and pandas frames: predict_text.py, or series files: predict_series.py) ``inputs`` (one of them:
    that one); ``run_dir`` may be a Hugging Face classifier folder (predict_hf.py). A masked LM's run (or a
    BertForMaskedLM folder) fills the [MASK]s of texts instead: rows of predict_fill.py. Several runs of one task and
    data (a list) predict as their ensemble: class probabilities averaged. ``device``: cpu, cuda, cuda:1, auto;
    one this machine lacks is refused in one line."""
    from .predict_fill import fill_csv, fill_mask_info, fill_mask_run, fill_texts, predict_fill
    from .predict_hf import load_hf_classifier
    from .predict_series import predict_series, series_classifier_info, series_inputs
    from .predict_text import is_frame, predict_texts, read_texts
    from .train.distributed import pick_device
    from .train.ensemble import load_ensemble_model

    runs = list(run_dir) if isinstance(run_dir, (list, tuple)) else [run_dir]
    # one path, image or table: that one (list() of an array or a frame would give its rows or column names)
    inputs = [inputs] if isinstance(inputs, (str, Path)) or is_in_memory(inputs) or is_frame(inputs) else list(inputs)
    if not inputs:
        raise ConfigError("nothing to predict: inputs is empty; give image files or folders, texts or series files "
                          "(or images, frames, arrays held in memory)")
    device = pick_device(str(device), "device")
    if top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, got {top_k}")
    if is_hf_folder(runs[0]):  # a Hugging Face classifier folder itself (predict_hf.py)
        if len(runs) > 1:
            raise ConfigError(f"{runs[0]} is a Hugging Face folder, not a run: --ensemble averages runs of xformer "
                              "train; predict with the folder alone")
        model, kind, info = load_hf_classifier(runs[0])
        if kind == "fill":  # a BertForMaskedLM: transformers' pipeline("fill-mask")
            rows = predict_fill(model, fill_texts(inputs, info["name"]), info, top_k, batch_size, device)
            return rows, fill_csv(rows)
        rows = predict_texts(model, read_texts(inputs), info, top_k, batch_size, device) if kind == "text" else \
            predict_images(model, image_files(inputs), *info, top_k, batch_size, device)
        return rows, predictions_csv(rows, top_k)
    if (Path(runs[0]) / "config.yaml").is_file() and (fill := fill_mask_info(Path(runs[0]))) is not None:
        return fill_mask_run(runs, inputs, fill, top_k, batch_size, device, checkpoint)  # a masked LM's run
    if (Path(runs[0]) / "config.yaml").is_file() and (text := text_classifier_info(Path(runs[0]))) is not None:
        texts = read_texts(inputs, text["text_column"], text["pair_column"], label_column=text["label_column"])
        _, model = load_ensemble_model(runs, checkpoint)
        rows = predict_texts(model, texts, text, top_k, batch_size, device)
        return rows, predictions_csv(rows, top_k)
    if (Path(runs[0]) / "config.yaml").is_file() and (series := series_classifier_info(Path(runs[0]))) is not None:
        names, x, labels = series_inputs(inputs, series)
        _, model = load_ensemble_model(runs, checkpoint)
        rows = predict_series(model, names, x, series, top_k, batch_size, device, labels)
        return rows, predictions_csv(rows, top_k)
    spec, names = image_classifier_info(runs[0])
    files = image_files(inputs)
    _, model = load_ensemble_model(runs, checkpoint)
    rows = predict_images(model, files, spec, names, top_k, batch_size, device)
    return rows, predictions_csv(rows, top_k)


__all__ = ["image_classifier_info", "read_class_names", "read_preprocess", "load_image", "image_files",
           "predict_images", "top_classes", "text_classifier_info", "predictions_csv", "predict_run"]
