"""Whether a run's own data is still the data it was trained on, before ``--resume`` or ``evaluate`` reads it.

A run folder names its data by path (config.yaml), and the files there may change after training: a class folder
renamed or added, images added (an image folder without val/ then carves another validation split, holding images
the model trained on), rows appended to a series (its ratio split, scaler and validation end move). Resuming on
such data trains on other labels or examples, and evaluating it scores the wrong line between training and
scored examples, both without any error. ``check_run_data`` refuses that in one line, from what the run saved:

- RUN/classes.json: the data's class names must be the run's, in the run's order;
- RUN/series_scaler.json: the series' columns, windows, validation end and training rows' mean/scale;
- RUN/data_split.json (``SPLIT_FILE``, written by runs since it exists; older runs skip this check): per split
  the number of examples and, for examples read from files (image folders), a SHA-256 of their sorted paths
  relative to the data's common folder (the class folder included). Cheap for large folders (nothing is read
  or even stat'ed), a folder moved whole keeps its record, and so does a broken image replaced by a good copy
  (its content is not what decides which split it falls in). A split that can hash its content cheaply (a
  ``digest()`` method: ``text_lm``'s ids, data/text.py) records that SHA-256 too (``content``; runs from before
  it have none and skip it), so a text replaced by another of the same length is not taken for the run's.

A ``--resume`` may name the data at a new place (``moved``, resume.py) only when these records prove it the run's
own: the split record, plus either file or content hashes (image folders, text) or the training rows' mean and
scale (a scaled series). Example counts alone (token files) cannot tell the run's data from other data of the
same size.
"""
from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path

from torch.utils.data import Subset

from ..config import ConfigError
from ..data.registry import DataBundle
from ..folders import write_atomically
from .resume import SPLIT_FILE, absolute_data_paths
from .same_data import TRAINING_ONLY, run_record, same_values, saved_by_data, unicode_spelling

SPLITS = ("train", "val", "test")
SERIES_FIELDS = ("columns", "input_len", "horizon", "validation_end", "mean", "scale")
# data arguments that, given otherwise than the run's, leave every split's examples (and so their count) as they were
SAME_EXAMPLES = (*TRAINING_ONLY, "scaler", "val_fraction")  # (val_fraction: refused unless val/ is read instead)


def _example_files(dataset) -> list[str] | None:
    """The file each example of ``dataset`` is read from, in its order (through ``Subset`` and the ``source`` of
    xformer's image items down to a dataset with ``samples`` of (path, label), as torchvision's ImageFolder);
    None when its examples do not come from files of their own."""
    if isinstance(dataset, Subset):
        inner = _example_files(dataset.dataset)
        return None if inner is None else [inner[i] for i in dataset.indices]
    samples = getattr(dataset, "samples", None)
    if isinstance(samples, list) and all(isinstance(s, tuple) and s and isinstance(s[0], str) for s in samples):
        return [s[0] for s in samples]
    source = getattr(dataset, "source", None)
    return _example_files(source) if source is not None and hasattr(source, "__getitem__") else None


def split_record(data: DataBundle) -> dict:
    """{split: {"examples": n, "files": SHA-256 or absent}} of the data's splits (see the module docstring)."""
    files = {split: _example_files(getattr(data, split)) for split in SPLITS if getattr(data, split) is not None}
    every = [path for paths in files.values() if paths for path in paths]
    top = os.path.commonpath(every) if every else ""
    if every and os.path.isfile(top):
        top = os.path.dirname(top)
    record = {}
    for split, paths in files.items():
        try:
            entry = {"examples": len(getattr(data, split))}
        except TypeError:  # a dataset without a length: nothing cheap to compare
            continue
        if paths is not None:
            lines = sorted(os.path.relpath(p, top) for p in paths)
            # surrogateescape: a name that is not UTF-8 (latin-1 bytes from an old zip) is hashed as its bytes
            entry["files"] = hashlib.sha256("\n".join(lines).encode("utf-8", "surrogateescape")).hexdigest()
        digest = getattr(getattr(data, split), "digest", None)
        if callable(digest):
            entry["content"] = digest()
        record[split] = entry
    return record


def record_split(run_dir: Path, record: dict) -> None:
    """Write ``split_record``'s result as RUN/data_split.json (what ``check_run_data`` compares later)."""
    write_atomically(Path(run_dir) / SPLIT_FILE, json.dumps({"splits": record}, indent=1))


def _fix(doing: str, args: dict) -> str:
    key = next((key for key in ("root", "path", "files") if args.get(key)), None)
    source = f"data.args.{key} ({args[key]})" if key else "the data"
    if doing == "resume":
        return (f"--resume continues on the data the run was trained on: restore {source} as it was, or train a "
                "new run on the changed data")
    return (f"restore {source} as it was to score the run on its own splits, or score it on other data with "
            f"data.args.{key or 'KEY'}=OTHER (and train a new run for the changed data)")


def _classes_changed(run_dir: Path, ours: list, theirs: list) -> str:
    lacking, extra = [c for c in ours if c not in theirs], [c for c in theirs if c not in ours]
    what = ([f"{lacking} gone"] if lacking else []) + ([f"{extra} new"] if extra else [])
    return (f"its classes are {theirs}, the run's {ours} ({run_dir / 'classes.json'}): "
            f"{', '.join(what) if what else 'the same classes in another order'}{unicode_spelling(ours, theirs)}")


def changed_args(run_args: dict, args: dict) -> set[str]:
    """The keys of ``data.args`` that ``args`` (with evaluate's overrides) gives otherwise than ``run_args``."""
    before, after = absolute_data_paths(run_args), absolute_data_paths(args)
    return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}


def _series_changed(run_dir: Path, ours: dict, theirs: dict, overridden: set[str]) -> str | None:
    given = overridden | ({"mean", "scale"} if overridden & {"scaler", "columns"} else set())
    fields = [f for f in SERIES_FIELDS if f in ours and f not in given]
    differ = [f for f in fields if not same_values(ours.get(f), theirs.get(f))]
    if not differ:
        return None
    stats = [f for f in differ if f in ("mean", "scale")]
    shown = [f"{f} {theirs.get(f)!r} instead of {ours.get(f)!r}" for f in differ if f not in stats] + \
        ([f"the training rows' {' and '.join(stats)} differ{'s' if len(stats) == 1 else ''}"] if stats else [])
    return f"{', '.join(shown)} ({run_dir / 'series_scaler.json'})"


def _split_changed(run_dir: Path, ours: dict, theirs: dict, exact: bool) -> str | None:
    """What differs between two ``split_record``s; with ``exact`` False (the data built with other arguments,
    e.g. another input_len) only the files of the examples, not their count, must be the same."""
    differ = []
    for split in SPLITS:
        before, after = ours.get(split), theirs.get(split)
        if before == after or before is None and after is None:
            continue
        by_files = before is not None and after is not None and "files" in before and "files" in after
        if not exact and not by_files:
            continue
        if before is None or after is None:
            differ.append(f"{split} split {'added' if before is None else 'gone'}")
        elif before.get("examples") != after.get("examples"):
            differ.append(f"{split} holds {after.get('examples')} examples instead of {before.get('examples')}")
        elif by_files and before.get("files") != after.get("files"):
            differ.append(f"{split} holds other files")
        elif "content" in before and "content" in after and before["content"] != after["content"]:
            differ.append(f"{split} holds other content, as many examples")
    return f"{', '.join(differ)} ({run_dir / SPLIT_FILE})" if differ else None


def check_run_data(run_dir: Path, data: DataBundle, args: dict, doing: str = "evaluate",
                   record: dict | None = None, overridden: set[str] = frozenset(), moved: dict | None = None) -> None:
    """The run's own data (built from ``args``, its ``data.args``) must be the data it was trained on: one
    ConfigError naming what changed (classes, series rows, the split) and the fix otherwise. ``doing``:
    "evaluate", "resume" or "average", for the fix; ``record``: ``split_record(data)`` when already computed;
    ``overridden``: the keys of ``args`` given otherwise than the run's (``changed_args``), whose effects are
    not compared (``check_same_task`` does: e.g. input_len, image_size); ``moved``: {key: (old, new)} of the data
    paths a resume or average gives at a new place (``moved_data_paths``), which the run's records must prove its
    own."""
    run_dir = Path(run_dir)
    if moved:
        _check_provable(run_dir, moved, doing)
    problem = _data_problem(run_dir, data, record, overridden)
    if problem is None:
        return
    if moved:
        raise ConfigError(_not_the_runs(run_dir, moved, doing, problem))
    raise ConfigError(f"the data of {run_dir} changed since it was trained: {problem}; {_fix(doing, args)}")


def _data_problem(run_dir: Path, data: DataBundle, record: dict | None, overridden: set[str]) -> str | None:
    """What differs between ``data`` and the run's records (``check_run_data``), None when nothing does."""
    saved = saved_by_data(data, ("classes.json", "series_scaler.json"))
    problem = None
    if (run_dir / "classes.json").is_file() and "classes.json" in saved:
        ours = run_record(run_dir / "classes.json", "class_names", list)
        theirs = saved["classes.json"].get("class_names")
        if ours != theirs:
            problem = _classes_changed(run_dir, list(ours or []), list(theirs or []))
    if problem is None and (run_dir / "series_scaler.json").is_file() and "series_scaler.json" in saved:
        problem = _series_changed(run_dir, run_record(run_dir / "series_scaler.json"),
                                  saved["series_scaler.json"], set(overridden))
    if problem is None and (run_dir / SPLIT_FILE).is_file():
        ours = run_record(run_dir / SPLIT_FILE, "splits", dict)
        problem = _split_changed(run_dir, ours, record if record is not None else split_record(data),
                                 exact=set(overridden) <= set(SAME_EXAMPLES))
    return problem


def _not_the_runs(run_dir: Path, moved: dict, doing: str, problem: str) -> str:
    key, (old, new) = next(iter(moved.items()))
    return (f"cannot {doing} {run_dir}: the data at {new} (data.args.{key}) is not the run's: {problem}; give the "
            f"place the run's own data moved to, or move it back to {old}")


@contextmanager
def building_moved_data(run_dir: Path, moved: dict, doing: str):
    """Around building the run's data given at a new place (``moved``, as ``check_run_data`` takes it): the run's
    own data built with these arguments when it trained, so a data error there (a text shorter than one window, a
    column missing) says the data is not the run's, first; the data's own fix would make other data fit."""
    try:
        yield
    except ConfigError as error:
        problem = str(error).partition("; ")[0]  # the data's line is "problem; fix": its fix is not the way on here
        raise ConfigError(_not_the_runs(run_dir, moved, doing, f"it does not build as the run's did ({problem})")) \
            from None


def _check_provable(run_dir: Path, moved: dict, doing: str) -> None:
    """The run's records can tell its own data at a new place from other data (see the module docstring). A run
    without data_split.json never gets here: ``resume.check_resume`` refuses its moved data first, and average
    checks it as before the file existed."""
    key, (old, new) = next(iter(moved.items()))
    splits = run_record(run_dir / SPLIT_FILE, "splits", dict)
    stats_file = run_dir / "series_scaler.json"
    stats = run_record(stats_file) if stats_file.is_file() else {}
    if any(isinstance(entry, dict) and ("files" in entry or "content" in entry) for entry in splits.values()) or \
            (stats.get("mean") is not None and stats.get("scale") is not None):
        return
    raise ConfigError(f"cannot {doing} {run_dir} on the data at {new} (data.args.{key}): its {SPLIT_FILE} holds "
                      "example counts only, which cannot tell its data from other data of the same size, so a "
                      f"moved data set cannot be checked to be the run's; move the data back to {old}")


__all__ = ["SPLIT_FILE", "split_record", "record_split", "check_run_data", "building_moved_data"]
