"""`xformer evaluate RUN_DIR [RUN_DIR ...] [--checkpoint best|last|step_N] [data.args.KEY=VALUE ...]`: rebuild a
run's model from its folder and print its metrics as JSON, on the run's data or on other data of the same task;
several runs of one task are evaluated as their ensemble (forecasts or class probabilities averaged)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import ConfigError, is_override, load_yaml
from ..folders import check_distinct_runs, is_hf_folder, is_run_folder, not_a_run_folder


def run(args: argparse.Namespace) -> None:
    from ..train.ensemble import evaluate_ensemble

    runs = [item for item in args.items if not is_override(item)]
    overrides = [item for item in args.items if is_override(item)]
    if not runs:
        raise ConfigError("give at least one RUN_DIR before the data.args.KEY=VALUE overrides")
    if len(runs) == 1 and Path(runs[0]).suffix in (".yaml", ".yml") and Path(runs[0]).is_file():
        run = Path(runs[0]).parent
        if is_run_folder(run) and not load_yaml(runs[0]).get("init_from"):  # meant: the run it describes
            raise ConfigError(f"{runs[0]} is the config of the run {run}, whose weights evaluate reads from the run "
                              f"folder; give xformer evaluate {run}")
        return _evaluate_start(runs[0], overrides, args.checkpoint)
    for run_dir in runs:
        if Path(run_dir).suffix in (".yaml", ".yml") and Path(run_dir).is_file():
            raise ConfigError(f"{run_dir} is a recipe: evaluate scores one recipe's starting weights alone "
                              "(xformer evaluate RECIPE.yaml), or runs (their ensemble), not both")
        if is_hf_folder(run_dir):
            _check_folder_trained(run_dir)
            raise ConfigError(f"{run_dir} is a Hugging Face folder, not a run: evaluate needs a run's data; score it "
                              f"on a recipe's data with xformer evaluate RECIPE.yaml init_from=hf:{run_dir}, or "
                              f"fine-tune it with xformer train RECIPE --init-from hf:{run_dir} and evaluate that run")
        if not (Path(run_dir) / "config.yaml").is_file():
            raise ConfigError(f"{not_a_run_folder(run_dir)}; give the --out folder of xformer train")
        if (load_yaml(Path(run_dir) / "config.yaml").get("data") or {}).get("name") == "forecaster":
            raise ConfigError(f"{run_dir} is a Forecaster.save folder, which holds no data to evaluate on; score it "
                              f"with xformer backtest {run_dir} --data FILE --windows N (or xformer forecast)")
    check_distinct_runs(runs)  # a typo on the command line (in Python an ensemble of a run with itself is the run)
    metrics = evaluate_ensemble(runs, args.checkpoint, overrides)
    if not metrics:  # a run trained without validation or test split, or other data that gives neither
        raise ConfigError("the data has no validation or test split to score (val_fraction and test_fraction 0, "
                          "or splits too small to hold an example); give data.args.test_fraction=1 to score "
                          "every example of other data, or data with val/test examples")
    print(json.dumps(metrics, indent=1))


def _check_folder_trained(folder: str) -> None:
    """A Hugging Face folder whose head would be untrained (a ``BertModel``) gives random scores on any recipe's
    data until fine-tuned: refused naming that, rather than pointing to ``xformer evaluate RECIPE init_from=``."""
    from ..interop.pretrained import load_source, pretrained_model
    from ..models import check_trained

    source = load_source(f"hf:{folder}")
    check_trained(pretrained_model(source), "a score", source.source)


def _evaluate_start(recipe: str, overrides: list[str], checkpoint: str) -> None:
    """``xformer evaluate RECIPE.yaml [a.b=c ...]``: the weights the recipe's init_from gives its model, scored on
    its data before training (xformer/train/start_weights.py)."""
    import sys

    from ..train.config import load_experiment
    from ..train.start_weights import evaluate_start

    if checkpoint != "best":
        raise ConfigError("--checkpoint picks a checkpoint of a run; a recipe is scored with the weights its "
                          "init_from gives (init_from=RUN/checkpoints/step_N for one of a run's)")
    metrics, summary = evaluate_start(load_experiment(recipe, overrides))
    if not metrics:
        raise ConfigError("the data has no validation or test split to score; give data.args.test_fraction=1 "
                          "to score every example, or data with val/test examples")
    print(summary, file=sys.stderr, flush=True)
    print(json.dumps(metrics, indent=1))


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="re-evaluate a trained run and print its metrics as JSON",
        description="Rebuild the model of RUN_DIR from config.yaml and its best (else latest) checkpoint, "
                    "or the one --checkpoint names, evaluate it on the validation and test splits, print flat "
                    "metrics as JSON. data.args.KEY=VALUE overrides evaluate it on other data of the same task "
                    "instead (e.g. data.args.root=new_images: its val/ and test/ splits), refused in one line "
                    "when that data implies another model, would be preprocessed otherwise than the run's images "
                    "(image_size, channels, mean/std) or labels its classes or columns differently. Several "
                    "RUN_DIRs (seeds of one recipe, or models of one task trained on the same data) are "
                    "evaluated as one ensemble: their forecasts (each quantile too) or class probabilities "
                    "averaged; forecasters may differ in data.args.input_len (each reads its own last steps of "
                    "the longest window). A RECIPE.yaml instead of RUN_DIR scores the weights its init_from "
                    "(hf:FOLDER, timm:FILE#MODEL, a run) gives its model on its data, before any training "
                    "(a.b=c overrides any recipe key, as for train); nothing is written.",
        epilog="examples: xformer evaluate runs/etth1_s1 runs/etth1_s2 runs/etth1_s3 (a seed ensemble); "
               "xformer evaluate my_classifier.yaml init_from=hf:models/bert-sst2 (a checkpoint before fine-tuning)")
    p.add_argument("items", nargs="+", metavar="RUN_DIR [RUN_DIR ...] [data.args.KEY=VALUE ...]",
                   help="one run, or several runs of one task and data (their ensemble), or a RECIPE.yaml with "
                        "init_from; then other data for the run's data set (for a recipe: any key), values read "
                        "as YAML")
    p.add_argument("--checkpoint", default="best", metavar="best|last|step_N",
                   help="which checkpoint: best (default; the one metrics.json describes), last, or step_N "
                        "(one of RUN_DIR/checkpoints/step_*)")
    p.set_defaults(func=run)
