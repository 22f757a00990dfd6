"""`xformer attention RUN_DIR [--split test] [--index 0 | --image FILE] [--checkpoint best|last|step_N]
[--out FILE.png]`: where an image model looks, at one image of a split or at any image file (``--image``:
preprocessed as `xformer predict` does), titled with the predicted class name and its probability (a split's
image: after its true class name). A split's image is drawn with the run's normalisation undone; a training
image without its random augmentation (as evaluation would see it).

Saves one PNG: the image, its attention rollout (Abnar & Zuidema 2020) and the rollout over the
image in the first row, then one panel per layer and head (xformer/analysis/attention_maps.py).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..batch import IMAGES, LABELS
from ..config import ConfigError, load_yaml
from ..folders import FIGURE_SUFFIXES, check_outside_data, is_hf_folder, not_a_run_folder, output_file


def run(args: argparse.Namespace) -> None:
    import torch

    from ..analysis.attention_maps import save_attention_grid
    from ..predict import image_classifier_info
    from ..train.run import load_run

    run_dir = Path(args.run_dir)
    if is_hf_folder(run_dir):  # e.g. a ViTModel's
        raise ConfigError(f"{run_dir} is a Hugging Face folder, not a run: xformer attention draws a run's image "
                          f"model on its data; fine-tune it first (xformer train RECIPE --init-from hf:{run_dir}) "
                          "and give that run's --out folder")
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{not_a_run_folder(run_dir)}; give the --out folder of xformer train")
    model_section = load_yaml(run_dir / "config.yaml").get("model") or {}
    tokenizer = model_section.get("tokenizer") or {}
    if not str(tokenizer.get("name", "")).startswith("image"):
        baseline = (model_section.get("baseline") or {}).get("name")
        what = (f"a {baseline} baseline, which has no attention" if baseline else
                f"not one (its tokenizer is {tokenizer.get('name', 'none')!r})")
        raise ConfigError(f"xformer attention draws the attention of transformer image models; {run_dir} is {what}; "
                          "give the run folder of a model with an image tokenizer (ViT, CCT)")
    if args.image is not None:
        out = _out(args, f"attention_{Path(args.image).stem}.png", inputs=[args.image])
        _attention_of_file(run_dir, args, out)
        return
    out = _out(args, f"attention_{args.split}_{args.index}.png")
    spec, names = image_classifier_info(run_dir)  # the normalisation to undo for display, the class names
    _, model, data = load_run(run_dir, args.checkpoint)
    split = getattr(data, args.split)
    if split is None:
        others = [name for name in ("train", "val", "test") if getattr(data, name) is not None]
        raise ConfigError(f"the run's data has no {args.split} split; choose --split {' or '.join(others)}")
    if not 0 <= args.index < len(split):
        raise ConfigError(f"--index {args.index} is outside the {args.split} split (0..{len(split) - 1})")
    if args.split == "train":  # as evaluation sees it: the random crops, flips and erasing of training left out
        if not hasattr(split, "unaugmented"):
            raise ConfigError("this run's training images cannot be shown without their random augmentation; "
                              "choose --split val or test")
        item = split.unaugmented(args.index)
    else:
        item = split[args.index]
    if IMAGES not in item:
        raise ConfigError("xformer attention draws image models; this run's data has no images")
    image = item[IMAGES]
    with torch.no_grad():
        probs = model.eval()({IMAGES: image[None]})["logits"].float().softmax(-1)[0]
    title = _title(probs, names, int(item[LABELS]) if LABELS in item else None)
    save_attention_grid(model, image, out, title, mean=spec.get("mean"), std=spec.get("std"))
    print(out)


def _title(probs, names, label: int | None = None) -> str:
    """"<predicted class> (<probability>)"; with the label known, "true <class>" on a line above it."""
    def name(k: int) -> str:
        return names[k] if k < len(names) else str(k)

    k = int(probs.argmax())
    predicted = f"{name(k)} ({float(probs[k]):.2f})"
    return predicted if label is None else f"true {name(label)}\npredicted {predicted}"


def _out(args: argparse.Namespace, default_name: str, inputs=()) -> Path:
    """Where the grid goes, checked before the model is built: --out, else RUN_DIR/<default_name> (the
    command's own file in the run folder; any other file of the run is never replaced)."""
    if args.out is None:
        return output_file(Path(args.run_dir) / default_name, "the default --out", args.overwrite, inputs)
    check_outside_data(args.out, "--out", [args.run_dir])  # in an image folder it would be read as an image
    return output_file(args.out, "--out", args.overwrite, inputs, runs=[args.run_dir], suffixes=FIGURE_SUFFIXES)


def _attention_of_file(run_dir: Path, args: argparse.Namespace, out: Path) -> None:
    """The grid of one image file, through the run's evaluation transform (RUN_DIR/preprocess.json)."""
    import torch

    from ..analysis.attention_maps import save_attention_grid
    from ..predict import image_classifier_info, load_image
    from ..train.run import load_run_model

    spec, names = image_classifier_info(run_dir)
    image = load_image(args.image, spec)
    _, model = load_run_model(run_dir, args.checkpoint)
    with torch.no_grad():
        probs = model.eval()({IMAGES: image[None]})["logits"].float().softmax(-1)[0]
    save_attention_grid(model, image, out, _title(probs, names), mean=spec.get("mean"), std=spec.get("std"))
    print(out)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "attention", help="save the attention maps and rollout of one image as a PNG grid",
        description="Rebuild the image model of RUN_DIR (best checkpoint, or --checkpoint) and save, for one image "
                    "of a split, "
                    "the image, its attention rollout and one attention map per layer and head.",
        epilog="example: xformer attention runs/vit_digits --index 3 --out attention.png")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--split", default="test", choices=["train", "val", "test"],
                   help="default test; a train image is drawn without its random augmentation")
    p.add_argument("--index", type=int, default=0, help="which image of the split (default 0)")
    p.add_argument("--image", metavar="FILE", help="an image file instead of a split's image: preprocessed as "
                   "xformer predict does, titled with the predicted class and its probability")
    p.add_argument("--checkpoint", default="best", metavar="best|last|step_N",
                   help="which checkpoint (default best, the one metrics.json describes)")
    p.add_argument("--out", metavar="FILE.png",
                   help="default RUN_DIR/attention_<split>_<index>.png (with --image: attention_<name>.png); "
                        ".png, .svg, .pdf or .jpg")
    p.add_argument("--overwrite", action="store_true", help="replace the grid's file if it exists (never the "
                   "image itself or another file of the run folder)")
    p.set_defaults(func=run)
