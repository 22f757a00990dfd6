"""What ``--resume`` may change, and what it refuses in one line.

A resumed run continues exactly: its weights, optimizer, schedule, RNG and data position come
from the latest checkpoint, and every checkpoint records the experiment it was saved with
(state.json "config"; older checkpoints: config.yaml). A key given on the command line (or
edited into config.yaml) that the saved state cannot honour exactly is refused, naming the key:
the model, the data, the optimizer's settings, the batch, the precision. The keys in
``RESUMABLE`` may change:

- ``train.steps`` / ``train.epochs``: a new budget. The learning-rate schedule is rebuilt as if
  the run had been planned for the new length from its start, and continues from the current
  step (a finished 40-step cosine run extended to 60 steps goes on with the 60-step cosine at
  step 40). A budget below the steps already done is refused.
- ``distill.teacher``: the teacher run's new place, when it lends the weights the run recorded at its start
  (RUN/teacher.json: the checkpoint and its SHA-256), e.g. after the teacher's folder moved.
- the data's place (``DATA_PATHS``: data.args.root, path, files, test_path), when the data there is the run's own
  (data no longer at its recorded place is named with this way on, ``check_data_there``): the run records its
  split (RUN/data_split.json) and the data built from the new place matches that record, classes.json and
  series_scaler.json (``check_run_data`` with ``moved``, once the data is built). A run without that record
  is refused here: nothing could tell its data from other data at the new place.
- when and how it evaluates, logs and keeps checkpoints, its time limit, early-stopping
  patience, the device, loader workers and torch.compile: they change nothing already saved.

``train.early_stopping.mode`` left out takes the saved run's (not the one the metric implies, ``EarlyStopping``):
a run saved with ``mode: min`` for val_accuracy, before the mode followed the metric, resumes as it was saved.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path

from ..config import ConfigError, from_dict, from_file, load_yaml
from ..folders import inside_run_note, replaced_note
from .checkpoint import AVERAGED_FILE, POINTER, checkpoint_dir, read_state
from .config import ExperimentConfig, recipe_dict
from .distill import TEACHER_FILE, lends_recorded_weights, teacher_path

BUDGET = ("train.steps", "train.epochs")
RESUMABLE = (*BUDGET, "train.eval_every", "train.log_every", "train.keep_last", "train.max_seconds",
             "train.early_stopping.patience", "train.eval_batches", "train.eval_batch_size", "train.device",
             "train.num_workers", "train.compile", "train.activation_checkpointing", "train.wandb.project",
             "train.wandb.entity", "train.wandb.name", "train.wandb.tags", "train.wandb.mode")


def check_run_folder(run_dir: str | Path) -> Path:
    """``run_dir`` must be a run folder with a checkpoint, else one line saying what it is instead."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"cannot resume {run_dir}: no such run folder; give the --out folder of an earlier "
                          "xformer train")
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"cannot resume {run_dir}: it is not a run folder (no config.yaml"
                          f"{inside_run_note(run_dir, checkpoint=False)}); give the --out "
                          f"folder of an earlier xformer train{replaced_note(run_dir)}")
    if not (run_dir / "checkpoints" / POINTER).is_file():
        note = replaced_note(run_dir)  # a killed --overwrite: the old run lies aside, and --overwrite is refused
        raise ConfigError(f"cannot resume {run_dir}: it holds no checkpoint yet (checkpoints/{POINTER})"
                          + (note if note else "; train it afresh with --overwrite"))
    if (run_dir / AVERAGED_FILE).is_file():
        raise ConfigError(f"cannot resume {run_dir}: it is an average of checkpoints ({AVERAGED_FILE}), which holds "
                          f"no optimizer state; train on from it in a new run with init_from={run_dir}")
    return run_dir


def saved_experiment(run_dir: Path) -> ExperimentConfig:
    """The experiment the latest checkpoint was saved with (config.yaml for checkpoints that predate it)."""
    state = read_state(checkpoint_dir(run_dir / "checkpoints"))
    if "config" in state:
        return from_dict(ExperimentConfig, state["config"])
    return from_file(ExperimentConfig, load_yaml(run_dir / "config.yaml"), run_dir / "config.yaml")


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


DATA_PATHS = ("root", "path", "files", "test_path")  # the data arguments that name files or folders
SPLIT_FILE = "data_split.json"  # RUN/data_split.json, the split's identity (data_identity.py)


def absolute_data_paths(args: dict) -> dict:
    """``data.args`` with its file and folder paths absolute (``DATA_PATHS``, and a saved vocabulary's folder given
    as ``tokenizer``; ~ expanded, a relative one taken from the current directory), as a run records them: a run
    started in one directory then resumes, and is evaluated, from any other, as ``distill.teacher`` is
    (``teacher_path``)."""
    def absolute(value):
        if isinstance(value, list):
            return [absolute(v) for v in value]
        return os.path.abspath(os.path.expanduser(value)) if isinstance(value, str) and value else value

    named = {"char", "wordpiece"}  # a tokenizer learned from the text, not a folder
    return {k: absolute(v) if k in DATA_PATHS or (k == "tokenizer" and v not in named) else v for k, v in args.items()}


def run_data_args(data, resume: bool, given: Iterable[str] = ()) -> dict:
    """``data.args`` as a run reads them: paths absolute; on a resume, without the settings its data never read
    (a run recorded before they were refused: ``data/unread.py``): the run continues as it was trained. The keys
    ``given`` on the command line are kept, for the data to refuse as a new run's."""
    from ..data.unread import unread_settings

    unread = set(unread_settings(data.name, data.args) if resume else ()) - set(given)
    return absolute_data_paths({key: value for key, value in data.args.items() if key not in unread})


def as_trained(config: ExperimentConfig, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """A run's recorded experiment, to evaluate: without the data settings it never read (``run_data_args``), but
    for those the command line's ``overrides`` (``data.args.KEY=VALUE``) give, which the data refuses."""
    given = {item.partition("=")[0].split(".")[2] for item in overrides if item.startswith("data.args.")}
    args = run_data_args(config.data, True, given)
    return dataclasses.replace(config, data=dataclasses.replace(config.data, args=args))


def check_resume(run_dir: Path, config: ExperimentConfig) -> ExperimentConfig:
    """Refuse a change ``config`` makes to the saved experiment that resuming cannot honour exactly;
    return the saved experiment. A ``train.early_stopping.mode`` that ``config`` left out becomes the saved one."""
    saved = saved_experiment(run_dir)
    rule, saved_rule = config.train.early_stopping, saved.train.early_stopping
    if rule.mode_from_metric and rule.metric == saved_rule.metric:  # the best so far was chosen in that direction
        rule.mode = saved_rule.mode
    before, after = _flat(recipe_dict(saved)), _flat(recipe_dict(config))
    for flat in (before, after):  # a relative teacher or data path means the absolute one the run records
        if flat.get("distill.teacher") is not None:
            flat["distill.teacher"] = str(teacher_path(flat["distill.teacher"]))
        flat.update({f"data.args.{k}": v for k, v in absolute_data_paths(
            {k: flat[f"data.args.{k}"] for k in DATA_PATHS if f"data.args.{k}" in flat}).items()})
    from ..data.unread import unread_settings

    unread = {f"data.args.{key}" for key in unread_settings(saved.data.name, saved.data.args)}
    for key in sorted(before.keys() | after.keys()):
        unread_key = ".".join(key.split(".")[:3]) in unread and key not in after  # data.args.scaler.mean too
        if key in RESUMABLE or before.get(key) == after.get(key) or unread_key:
            continue
        if (key not in before or key not in after) and _at_default(key, (after if key in after else before)[key],
                                                                    saved):
            continue  # a key left out means its default: giving that value changes nothing
        if key == "distill.teacher" and None not in (before.get(key), after.get(key)):
            if lends_recorded_weights(run_dir, after[key]):
                continue  # the same teacher weights, moved: the run continues exactly
            raise ConfigError(f"--resume cannot change distill.teacher to {after[key]}: it does not lend the "
                              f"weights the run was trained against ({run_dir / TEACHER_FILE}); give the teacher "
                              f"run's new place, or move it back to {before[key]} and drop the override")
        if key in {f"data.args.{k}" for k in DATA_PATHS} and before.get(key) and after.get(key):
            if (run_dir / SPLIT_FILE).is_file():
                continue  # the data moved: check_run_data compares it with the run's record once it is built
            raise ConfigError(f"--resume cannot change {key} ({before[key]!r} in the saved run, {after[key]!r} now): "
                              f"the run records no {SPLIT_FILE} (it predates it), so data at a new place cannot be "
                              f"checked to be the run's; move the data back to {before[key]} and drop the override "
                              "(or undo the edit of config.yaml)")
        raise ConfigError(f"--resume cannot change {key} ({before.get(key)!r} in the saved run, "
                          f"{after.get(key)!r} now): the saved state depends on it; drop that override (or undo "
                          f"the edit of config.yaml), or start a new run with init_from={run_dir}")
    return saved


def check_data_there(args: dict, command: str) -> None:
    """A run's data paths (``DATA_PATHS`` of ``args``) must still be there: a file or folder moved since the run
    started is named with ``command`` (``xformer train --resume RUN``, ``xformer evaluate RUN``) and its new place
    as the way on, rather than the dataset's own message for a path that never was (which may offer a default
    corpus). The data found at a new place is checked to be the run's own once it is built (``check_run_data``)."""
    for key in DATA_PATHS:
        values = args.get(key)
        paths = values if isinstance(values, list) else [values] if isinstance(values, str) and values else []
        gone = [p for p in paths if not Path(p).exists()]
        if gone:
            new = "NEW" if isinstance(values, str) else "[" + ", ".join("NEW" if p in gone else p for p in paths) + "]"
            raise ConfigError(f"the run's data {gone[0]} (data.args.{key}) is not there any more; if it moved, give "
                              f"its new place: {command} data.args.{key}={new}")


def moved_data_paths(saved: ExperimentConfig, config: ExperimentConfig) -> dict[str, tuple]:
    """{key: (the saved place, the new one)} of the ``DATA_PATHS`` that ``config`` gives elsewhere than ``saved``
    (absolute, as ``check_resume`` compares them)."""
    before, after = absolute_data_paths(saved.data.args), absolute_data_paths(config.data.args)
    return {key: (before[key], after[key]) for key in DATA_PATHS
            if before.get(key) and after.get(key) and before[key] != after[key]}


def _at_default(key: str, value, config: ExperimentConfig) -> bool:
    """Whether ``value`` is the default of the argument ``key`` names (data.args.X, or model.tokenizer / head /
    baseline .args.X) for the dataset or part ``config`` builds: what that argument is when left out."""
    from ..data.registry import DATASETS
    from ..models import import_parts
    from ..registry import BASELINES, HEADS, TOKENIZERS, import_all_submodules

    *where, name = key.split(".")
    model, where = config.model, ".".join(where)
    parts = {"data.args": (DATASETS, config.data.name), "model.tokenizer.args": (TOKENIZERS, model.tokenizer.name),
             "model.head.args": (HEADS, model.head.name),
             "model.baseline.args": (BASELINES, model.baseline.name if model.baseline is not None else None)}
    registry, part = parts.get(where, (None, None))
    if part is None:
        return False
    import_parts()
    import_all_submodules("xformer.data")
    defaults = registry.defaults(part)
    return name in defaults and _as_lists(defaults[name]) == _as_lists(value)


def _as_lists(value):
    """Tuples (a factory's default, e.g. ``widths=(32, 64)``) as lists (how YAML gives them), recursively."""
    return [_as_lists(v) for v in value] if isinstance(value, (list, tuple)) else value


def planned_steps(config: ExperimentConfig, steps_per_epoch: int) -> int:
    """The length of the schedule ``config`` describes, in optimizer steps."""
    return config.train.steps or config.train.epochs * steps_per_epoch
