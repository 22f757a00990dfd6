"""ViT on scikit-learn's 8x8 digits next to scikit-learn's SVC and k-NN: test accuracy and training time.

    python benchmarks/vit_digits.py [--seeds 0,1,2] [--threads N] [--out runs/bench-vit-digits]
    python benchmarks/vit_digits.py --recipe tasks/cct_digits.yaml --cnn --threads 1   # a CCT and the CNN

One split for all: ``train_test_split(stratify=y, test_size=0.2, random_state=0)`` of the 1797
images -> 1437 train+val / 360 test (the split of xformer's ``digits`` data, checked here).

- ``SVC(gamma=0.001)`` and ``KNeighborsClassifier(n_neighbors=3)`` (scikit-learn's digits
  example settings) are fit on the 1437 train+val images, raw pixel values 0..16 (the scale
  gamma=0.001 was chosen for), and scored on the 360 test images.
- xformer's ViT is ``tasks/vit_digits.yaml`` run through ``train_run`` (the code path of
  ``xformer train``), once per seed; it trains on 1293 of the 1437 images and keeps 144
  for validation (the recipe was tuned on those, never on the test images).

``--recipe``: another transformer recipe in place of ``tasks/vit_digits.yaml`` (e.g. the CCT,
``tasks/cct_digits.yaml``), run the same way. ``--cnn``: also the project's CNN
(``tasks/cnn_digits.yaml``) on the same seeds, with the recipe's ``train.steps`` and ``data.args``
(augmentation, validation split) so that both train equally long on the same images.

Training time: the fit for scikit-learn; ``train_seconds`` of the run for the ViT (the
optimizer steps and the evaluations on the validation split) plus the run's wall time.
Results go to benchmarks/results/vit_digits.json
(another recipe: benchmarks/results/vit_digits_<recipe name>.json), replacing the recorded figures; for trials
give --results another file. --out is the prefix of the run folders (PREFIX-sS, PREFIX-cnn-sS); folders left by
an earlier run are refused before any work unless --overwrite.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from run_folders import check_fresh, clear  # benchmarks/run_folders.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "tasks/vit_digits.yaml"
CNN_RECIPE = ROOT / "tasks/cnn_digits.yaml"
TEST_IMAGES = 360


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_test, y_test): raw 0..16 pixels flattened, the fixed 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = data.images.reshape(len(data.images), -1)
    train, test = train_test_split(np.arange(len(x)), test_size=0.2, stratify=data.target, random_state=0)
    return x[train], data.target[train], x[test], data.target[test]


def check_same_split(y_test: np.ndarray) -> None:
    """xformer's digits data must hold the same 360 test images, in the same order."""
    from xformer.data.registry import build_data

    test = build_data("digits", {}).test
    labels = np.array([int(test[i]["labels"]) for i in range(len(test))])
    if len(labels) != len(y_test) or (labels != y_test).any():
        raise SystemExit("xformer's digits test split differs from train_test_split(..., random_state=0)")


def run_sklearn(model, x_train, y_train, x_test, y_test) -> dict:
    start = time.perf_counter()
    model.fit(x_train, y_train)
    seconds = time.perf_counter() - start
    accuracy = float((model.predict(x_test) == y_test).mean())
    return {"model": repr(model), "test_accuracy": round(accuracy, 4),
            "test_errors": int(round((1 - accuracy) * len(y_test))), "train_seconds": round(seconds, 3),
            "train_images": len(y_train)}


def run_vit(seed: int, out: Path, overrides: list[str], recipe: Path = RECIPE) -> dict:
    from xformer.train.config import load_experiment
    from xformer.train.run import train_run

    config = load_experiment(recipe, [*overrides, f"train.seed={seed}"])
    clear(out)
    start = time.perf_counter()
    metrics = train_run(config, out)
    wall = time.perf_counter() - start
    n_params = parameter_count(out)
    return {"seed": seed, "test_accuracy": round(metrics["test_accuracy"], 4),
            "test_errors": int(round((1 - metrics["test_accuracy"]) * TEST_IMAGES)),
            "val_accuracy": round(metrics["val_accuracy"], 4), "train_seconds": metrics["train_seconds"],
            "wall_seconds": round(wall, 1), "steps": metrics["steps"], "best_step": metrics["best_step"],
            "parameters": n_params, "run_dir": str(out), "overrides": overrides}


def matching_overrides(recipe: Path, overrides: list[str]) -> list[str]:
    """Overrides giving the CNN the transformer recipe's steps and data arguments (augmentation included)."""
    from xformer.train.config import load_experiment

    config = load_experiment(recipe, overrides)
    data_args = {k: v for k, v in config.data.args.items() if k != "image_size"}
    return [f"train.steps={config.train.steps}",
            *(f"data.args.{k}={json.dumps(v)}" for k, v in sorted(data_args.items()))]


def summary(recipe: Path, runs: list[dict]) -> dict:
    # from the errors, not the rounded accuracies: 10, 2, 5 of 360 wrong is 0.9843, the rounded ones average 0.9842
    accuracies = [1 - r["test_errors"] / TEST_IMAGES for r in runs]
    return {"recipe": str(recipe.relative_to(ROOT)), "runs": runs,
            "test_accuracy_mean": round(float(np.mean(accuracies)), 4),
            "test_accuracy_std": round(float(np.std(accuracies, ddof=1)), 4) if len(runs) > 1 else None,
            "test_accuracy_min": min(r["test_accuracy"] for r in runs),
            "test_accuracy_max": max(r["test_accuracy"] for r in runs),
            "val_accuracy_mean": round(float(np.mean([r["val_accuracy"] for r in runs])), 4),
            "train_seconds_mean": round(float(np.mean([r["train_seconds"] for r in runs])), 1)}


def parameter_count(run_dir: Path) -> int:
    """The run's model's parameters; not every tensor of its checkpoint, which for the CNN also holds BatchNorm's
    running statistics and counters (388 numbers, counted as parameters before: 66,222 for 65,834)."""
    from xformer.train.run import load_run_model

    return sum(p.numel() for p in load_run_model(run_dir)[1].parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="train.seed of each ViT run, comma-separated")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=ROOT / "runs/bench-vit-digits")
    parser.add_argument("--recipe", type=Path, default=RECIPE, help="the transformer recipe (default: the ViT's)")
    parser.add_argument("--cnn", action="store_true",
                        help="also tasks/cnn_digits.yaml on the same seeds, with the recipe's steps and data args")
    parser.add_argument("--results", type=Path, help="where the figures go (default: the recorded file, "
                        "benchmarks/results/vit_digits[_<recipe>].json)")
    parser.add_argument("--overwrite", action="store_true", help="replace run folders left by an earlier run")
    parser.add_argument("overrides", nargs="*", metavar="a.b=c", help="recipe overrides for the ViT runs")
    args = parser.parse_args()
    recipe = args.recipe.resolve()
    seeds = [int(s) for s in args.seeds.split(",")]
    folders = {seed: Path(f"{args.out}-s{seed}") for seed in seeds}
    cnn_folders = {seed: Path(f"{args.out}-cnn-s{seed}") for seed in seeds} if args.cnn else {}
    check_fresh([*folders.values(), *cnn_folders.values()], args.overwrite)
    torch.set_num_threads(args.threads)
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    x_train, y_train, x_test, y_test = digits_split()
    check_same_split(y_test)
    result = {"machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
              "date": time.strftime("%Y-%m-%d"), "split": "digits, stratified 80/20, random_state=0: "
              "1437 train+val / 360 test",
              "svc": run_sklearn(SVC(gamma=0.001), x_train, y_train, x_test, y_test),
              "knn": run_sklearn(KNeighborsClassifier(n_neighbors=3), x_train, y_train, x_test, y_test)}
    runs = [run_vit(seed, folders[seed], args.overrides, recipe) for seed in seeds]
    result["vit"] = summary(recipe, runs)
    if args.cnn:
        cnn_overrides = matching_overrides(recipe, args.overrides)
        cnn_runs = [run_vit(seed, cnn_folders[seed], cnn_overrides, CNN_RECIPE) for seed in seeds]
        result["cnn"] = summary(CNN_RECIPE, cnn_runs)
    name = "vit_digits" if recipe == RECIPE else f"vit_digits_{recipe.stem}"
    out = args.results or ROOT / f"benchmarks/results/{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
