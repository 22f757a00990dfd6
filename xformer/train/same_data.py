"""Whether data is read as a trained run read its own: other data for one run, or the runs of an ensemble.

- ``check_same_preprocess``: other data scored by a run's model (``xformer evaluate RUN data.args.KEY=VALUE``)
  must be turned into tensors as the run's evaluation images were: the same size, channels, mean/std and resize
  as RUN/preprocess.json (a model scores pixels normalised otherwise without any error, and wrongly).
- ``check_same_split``: on the run's own data, overrides must not move the line between training and scored examples
  (nor may an edit of config.yaml since the checkpoint was saved).
- ``class_mismatch``: the line that names the run's classes other data lacks, and those it has beyond them.
- ``scale_as_the_run``: other data for a series forecaster standardised with the run's own statistics.
- ``effective_data``: what an ensemble compares of its members' data: the data as it really was (the dataset's
  defaults filled in), less what cannot change the validation and test examples or how they are read.
"""
from __future__ import annotations

import json
import os
import tempfile
import unicodedata
from pathlib import Path

from ..config import ConfigError, load_yaml, read_json
from ..data.images import PREPROCESS_FILE, default_preprocess
from ..data.registry import DataBundle
from ..data.vocab import LEARNING_ARGS, META_FILE
from .config import ExperimentConfig
from .distill import image_input
from .resume import absolute_data_paths

# data arguments that change only how training batches are augmented, never the validation and test images
TRAINING_ONLY = ("mixup", "cutmix", "label_smoothing", "hflip", "crop_scale", "auto_augment", "random_erasing",
                 "affine")
# the fields of preprocess.json, and the data arguments whose effect on an image they record
PREPROCESS_FIELDS = ("image_size", "channels", "mean", "std", "resize")
PREPROCESSED_ARGS = ("image_size", "channels", "mean", "std")
# the data arguments that name where the examples come from, and those that decide which of them each split holds
SOURCE_ARGS = ("root", "path", "files", "test_path")
SPLIT_ARGS = ("val_fraction", "test_fraction", "val_seed", "seed", "split", "train_ratio", "test_ratio")


def saved_by_data(data: DataBundle, names: tuple[str, ...]) -> dict[str, dict]:
    """{name: its JSON} of those of the files ``names`` that ``data.save`` writes into a run folder."""
    if data.save is None:
        return {}
    with tempfile.TemporaryDirectory() as folder:
        data.save(Path(folder))
        return {n: json.loads((Path(folder) / n).read_text(encoding="utf-8")) for n in names
                if (Path(folder) / n).is_file()}


VOCABULARY_FILES = ("vocab.txt", META_FILE)  # what defines the pieces a vocabulary's ids stand for


def vocabulary_of(folder: Path) -> dict[str, bytes]:
    """{name: contents} of the files of ``VOCABULARY_FILES`` in ``folder`` (a run's tokenizer/); {} for none."""
    return {name: (Path(folder) / name).read_bytes() for name in VOCABULARY_FILES if (Path(folder) / name).is_file()}


def data_vocabulary(data: DataBundle) -> dict[str, bytes]:
    """``vocabulary_of`` the tokenizer/ folder ``data.save`` writes into a run folder ({} when it writes none)."""
    if data.save is None:
        return {}
    with tempfile.TemporaryDirectory() as folder:
        data.save(Path(folder))
        return vocabulary_of(Path(folder) / "tokenizer")


def run_preprocess(run_dir: Path) -> dict | None:
    """The evaluation transform of a run's images: RUN/preprocess.json, or for a run that predates it the one its
    config.yaml implies (``default_preprocess``, as distillation and predict read it); None for other data."""
    path = Path(run_dir) / PREPROCESS_FILE
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    recipe = load_yaml(Path(run_dir) / "config.yaml")
    data, shape = recipe.get("data") or {}, image_input(recipe.get("model") or {})
    if shape is None:
        return None
    return default_preprocess(str(data.get("name")), data.get("args") or {}, shape[1:], shape[0])


def same_values(a, b) -> bool:
    """Equal, numbers within float rounding (mean/std written as given or as the defaults' floats)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(map(same_values, a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))
    return a == b


def _shown(value):
    return [_shown(v) for v in value] if isinstance(value, (list, tuple)) else \
        round(value, 4) if isinstance(value, float) else value


def preprocess_difference(ours: dict, theirs: dict) -> list[str]:
    """The fields of two preprocess.json specs that differ."""
    return [field for field in PREPROCESS_FIELDS if not same_values(ours.get(field), theirs.get(field))]


def check_same_preprocess(run_dir: Path, data: DataBundle) -> None:
    """Other data must reach the run's model preprocessed as the run's evaluation images were (``run_preprocess``):
    one ConfigError naming each field that differs, the data argument that set it, and the fix otherwise."""
    spec, ours = saved_by_data(data, (PREPROCESS_FILE,)).get(PREPROCESS_FILE), run_preprocess(run_dir)
    if spec is None or ours is None:
        return
    differ = preprocess_difference(ours, spec)
    if not differ:
        return
    shown = ", ".join(f"{field} {_shown(spec.get(field))} instead of {_shown(ours.get(field))}" for field in differ)
    keys = " and ".join(f"data.args.{field}" for field in differ if field in PREPROCESSED_ARGS)
    fix = f"leave {keys} out, or give the run's values" if keys else "give data of the run's dataset"
    raise ConfigError(f"the data would be preprocessed otherwise than {run_dir}'s images were: {shown} "
                      f"({Path(run_dir) / PREPROCESS_FILE}); a trained model must read other data as it read its "
                      f"own: {fix}")


def unicode_spelling(ours: list[str], theirs: list[str]) -> str:
    """The part of a classes-differ line for names of ``theirs`` that are names of ``ours`` in another Unicode
    form (an accent composed, 'caf\\xe9', or decomposed, 'cafe\\u0301', as a copy from macOS may write
    folder names): printed alike, so ``ascii`` shows them; "" when there are none."""
    composed = {unicodedata.normalize("NFC", name): name for name in ours}
    pairs = [(name, composed[unicodedata.normalize("NFC", name)]) for name in theirs
             if name not in ours and unicodedata.normalize("NFC", name) in composed]
    if not pairs:
        return ""
    shown = ", ".join(f"{ascii(name)} (the run's {ascii(own)})" for name, own in pairs)
    one = len(pairs) == 1
    return (f"; {shown} {'differs' if one else 'differ'} from the run's {'name' if one else 'names'} only in Unicode "
            f"form: rename {'it' if one else 'them'} as the run spells {'it' if one else 'them'} "
            "(unicodedata.normalize('NFC', name) composes accents)")


def class_mismatch(run_dir: Path, ours: list[str], theirs: list[str], root: str | None) -> str:
    """The line for other data whose class names (``theirs``) are not the run's (``ours``): which of the run's
    classes it lacks, which it has beyond them, and the fix (for an image folder: one folder per run class)."""
    if len(ours) != len(theirs):  # the model's output size: what the refusal is about
        problem = (f"the data gives head.n_classes={len(theirs)}, but the model of {run_dir} has {len(ours)}; "
                   "evaluate it on data of the same shape")
    else:
        problem = f"the data's class names {theirs} are not the run's {ours} ({Path(run_dir) / 'classes.json'})"
    lacking, extra = [c for c in ours if c not in theirs], [c for c in theirs if c not in ours]
    parts = ([f"lacks the run's {lacking}"] if lacking else []) + \
        ([f"has {extra}, which the run does not know"] if extra else [])
    what = f"it {' and '.join(parts)}" if parts else "it orders the same classes otherwise"
    what += unicode_spelling(ours, theirs)
    if root is None:
        return f"{problem}: {what}; give data labelled as the run's"
    return (f"{problem}: {what}; give each split of {root} (val/, test/) one folder per class of the run, named as "
            f"in its classes.json ({', '.join(ours)}), empty for a class the data has no images of"
            f"{'; move the other class folders out' if extra else ''}")


def check_same_task(run_dir: Path, config: ExperimentConfig, data: DataBundle) -> None:
    """Other data for a trained model must be preprocessed as the run's (``check_same_preprocess``: image size,
    channels, mean/std), imply the model the run has (classes, channels, horizon, vocabulary size...) and label
    it the same way: the class names and series columns the data would write into a run folder must be those
    the run wrote (the line names the run's classes the data lacks and those it has beyond them), and text read
    with its own vocabulary (a token folder's ids stand for the pieces of the folder's tokenizer/)."""
    check_same_preprocess(run_dir, data)
    ours, theirs = vocabulary_of(run_dir / "tokenizer"), data_vocabulary(data)
    if ours and theirs and ours != theirs:
        raise ConfigError(f"the data's ids are of another vocabulary than {run_dir / 'tokenizer'}: the same id would "
                          f"mean another piece to the run's model; prepare the text with the run's own (prepare.py "
                          f"TEXT --tokenizer {run_dir / 'tokenizer'} --val-fraction 1, data/README.md)")
    saved = saved_by_data(data, ("classes.json", "series_scaler.json"))
    if (run_dir / "classes.json").is_file() and "classes.json" in saved:
        ours = run_record(run_dir / "classes.json", "class_names", list)
        theirs = saved["classes.json"].get("class_names")
        if ours != theirs:
            root = config.data.args.get("root")
            raise ConfigError(class_mismatch(run_dir, list(ours or []), list(theirs or []), root))
    model = config.model
    parts = {"tokenizer": model.baseline.args, "head": model.baseline.args} if model.baseline is not None else \
        {"tokenizer": model.tokenizer.args, "head": model.head.args}
    for part, implied in data.model_args.items():
        for key, value in implied.items():
            have = parts.get(part, {}).get(key)
            if have is not None and have != value:
                raise ConfigError(f"the data gives {part}.{key}={value}, but the model of {run_dir} has {have}; "
                                  "evaluate it on data of the same shape")
    if (run_dir / "series_scaler.json").is_file() and "series_scaler.json" in saved:
        ours = run_record(run_dir / "series_scaler.json", "columns", list)
        theirs = saved["series_scaler.json"].get("columns")
        if list(ours or []) != list(theirs or []):  # a series classifier's scaler names no columns: [] and None
            raise ConfigError(f"the data's columns {theirs} are not the run's {ours} "
                              f"({run_dir / 'series_scaler.json'}); give data labelled as the run's")


def check_same_split(run_dir: Path, name: str, run_args: dict, args: dict, edited: bool = False) -> None:
    """Overrides of ``data.args`` for a trained run (``run_args``: config.yaml's, ``args``: with the overrides)
    may point it at other data (another ``SOURCE_ARGS`` value), but on the run's own data they must not move
    the line between its training examples and the ones it is scored on (``SPLIT_ARGS``): the validation or
    test split would then hold examples the model trained on. One ConfigError naming the key otherwise.
    ``edited``: ``run_args`` are those the checkpoint was trained with (its state.json) and ``args`` config.yaml's,
    edited by hand since."""
    if not same_source(name, run_args, args):
        return  # other data: its own split is the one to score
    defaults = dataset_defaults(name)
    before = {**defaults, **absolute_data_paths(run_args)}
    after = {**defaults, **absolute_data_paths(args)}
    for key in SPLIT_ARGS:
        if before.get(key) == after.get(key):
            continue
        if key == "val_fraction" and name == "image_folder" and (Path(str(after.get("root"))) / "val").is_dir():
            continue  # read from val/ instead: the split does not move
        if edited:
            raise ConfigError(f"{Path(run_dir) / 'config.yaml'} gives data.args.{key}={after.get(key)!r}, but the run "
                              f"was trained with {before.get(key)!r} (its checkpoint's state.json): that split would "
                              f"score examples it trained on; undo the edit of config.yaml, or score it on other "
                              f"data (data.args.root, path or files)")
        raise ConfigError(f"data.args.{key}={after.get(key)!r} would split {run_dir}'s own data otherwise than its "
                          f"training did ({before.get(key)!r}): the scored splits would hold examples it trained on; "
                          f"leave data.args.{key} out, or point it at other data (data.args.root, path or files)")


def real_data_paths(args: dict) -> dict:
    """``absolute_data_paths`` with symbolic links resolved (``os.path.realpath``): a link to the run's own folder,
    or a path through one, names the run's own examples."""
    def real(value):
        if isinstance(value, list):
            return [real(v) for v in value]
        return os.path.realpath(value) if isinstance(value, str) and value else value

    return {k: real(v) if k in SOURCE_ARGS else v for k, v in absolute_data_paths(args).items()}


def same_source(name: str, run_args: dict, args: dict) -> bool:
    """Whether the data arguments ``args`` name the examples ``run_args`` name (``SOURCE_ARGS``, paths absolute with
    links resolved, defaults filled in): the run's own data, read again, rather than other data."""
    defaults = dataset_defaults(name)
    before = {**defaults, **real_data_paths(run_args)}
    after = {**defaults, **real_data_paths(args)}
    return all(before.get(key) == after.get(key) for key in SOURCE_ARGS)


def dataset_defaults(name: str) -> dict:
    """The default of each argument of the registered dataset ``name`` ({} for a name not registered)."""
    from ..data.registry import DATASETS
    from ..registry import import_all_submodules

    import_all_submodules("xformer.data")
    return DATASETS.defaults(name)


def with_run_classes(run_dir: Path, name: str, args: dict) -> dict:
    """``args`` for other data than a classifier run's own: where the dataset takes its class names as an argument
    (text_classification's ``labels``, Hugging Face's label2id), the run's (RUN/classes.json) unless given, so
    that the data's class ids are the model's: a held-out file lacking a class is scored, and a label the run
    does not know is refused by the dataset."""
    classes = Path(run_dir) / "classes.json"
    if "labels" not in dataset_defaults(name) or args.get("labels") is not None or not classes.is_file():
        return args
    return {**args, "labels": run_record(classes, "class_names", list) or None}


def as_other_data(run_dir: Path, name: str, run_args: dict, args: dict, overrides: list[str]) -> dict:
    """``args`` for other data than a run's own (``run_args``: the run's; ``overrides``: evaluate's
    ``data.args.KEY=VALUE``): the run's classes (``with_run_classes``), and for a dataset that splits its files by
    fractions (the text datasets) every example scored, as the test split, unless the overrides give a fraction: a
    held-out file is data to score, not to split as the run's training files were (which scored a tenth of it as
    validation and another tenth as test). A series classifier scales its windows by its training file's rows: other
    data is its test file (``check_other_series``)."""
    if name == "series_classification":
        check_other_series(run_dir, real_data_paths(run_args), real_data_paths(args))
    args = with_run_classes(run_dir, name, args)
    fractions = {"val_fraction", "test_fraction"}
    given = {item.partition("=")[0].removeprefix("data.args.") for item in overrides}
    if fractions <= dataset_defaults(name).keys() and not fractions & given:
        args = {**args, "val_fraction": 0.0, "test_fraction": 1.0}
    return args


def check_other_series(run_dir: Path, run_args: dict, args: dict) -> None:
    """Other series for a series classifier: ``test_path=OTHER`` on a run trained with a test file, which keeps the
    training file and so the scaling and the validation series of the run. A new ``path`` would be read as training
    data (scaled by its own rows, a tenth scored as validation, and the run's test file scaled so too); a test file
    given to a run that held out 20% of ``path`` would move that split (validation holding series it trained on)."""
    moved = args.get("test_path") and args.get("test_path") != run_args.get("test_path")
    other = args.get("test_path") if moved else args.get("path")  # the file to score
    if args.get("path") != run_args.get("path"):
        why = f"data.args.path={args.get('path')} would be read as training data, scaled by its own rows, a tenth of " \
              "it scored as validation"
    elif not run_args.get("test_path"):
        why = f"data.args.test_path={other} would move the run's split (it held out 20% of data.args.path as its " \
              "test series), and its validation split would hold series it trained on"
    else:
        return
    also = f", or as data.args.test_path={other} (the run's scaling)" if run_args.get("test_path") else ""
    raise ConfigError(f"{why}; score the file with xformer predict {run_dir} {other} (accuracy, balanced accuracy "
                      f"and macro F1 of its labelled series, with the run's scaling){also}")


def effective_data(run: Path, preprocessed: bool = False) -> dict:
    """The data a run's model was trained and scored on, as the runs of an ensemble compare it: config.yaml's
    data name and arguments with the dataset's defaults filled in and paths absolute, less what cannot change the
    validation and test examples or how they are read: the augmentation of training batches (``TRAINING_ONLY``),
    the vocabulary's path and the settings that learned it (its files are compared instead), with ``preprocessed``
    (the runs' preprocess specs are compared instead) the arguments whose effect preprocess.json records, and an
    image folder's ``val_fraction`` when its root has val/ (which is then read instead)."""
    data = load_yaml(Path(run) / "config.yaml").get("data") or {}
    name = data.get("name")
    args = {**dataset_defaults(str(name)), **absolute_data_paths(data.get("args") or {})}
    dropped = {*TRAINING_ONLY, "tokenizer", *LEARNING_ARGS, *(PREPROCESSED_ARGS if preprocessed else ())}
    if name == "image_folder" and args.get("root") and (Path(args["root"]) / "val").is_dir():
        dropped.add("val_fraction")
    return {"name": name, **{k: v for k, v in args.items() if k not in dropped}}


# the fix for a record of the run edited by hand into invalid JSON: only a copy of it brings back what it proves
RESTORE = "it is the run's record of its data, written by xformer train; restore it from a copy of the run"


def run_record(path: Path, key: str | None = None, kind: type = dict):
    """A run's JSON record of its data (the whole mapping, or its ``key`` entry: a ``kind``, empty when absent);
    one line naming the file when a hand edit left it unreadable or of another shape."""
    value = read_json(path, RESTORE)
    entry = value.get(key) if isinstance(value, dict) and key is not None else value
    if not isinstance(value, dict) or not isinstance(entry, (kind, type(None))):
        shape = f'{{"{key}": {"[...]" if kind is list else "{...}"}, ...}}' if key else "{...}"
        raise ConfigError(f"{path} does not hold {shape}; {RESTORE}")
    return entry if entry is not None else kind()


def scale_as_the_run(run_dir: Path, config: ExperimentConfig) -> None:
    """``data.args.scaler=run``: other data for a series forecaster (``csv_series``, ``ett``) standardised with
    the run's own statistics (RUN/series_scaler.json), as ``xformer backtest`` and ``xformer forecast`` feed it,
    so a level shift shows in the errors. Without it the other data is standardised by its own training rows,
    the literature's protocol for each data set (its standardised errors compare with published ones)."""
    stats_file = run_dir / "series_scaler.json"
    stats = run_record(stats_file) if stats_file.is_file() else {}
    if config.data.name not in ("csv_series", "ett") or stats.get("mean") is None or stats.get("scale") is None:
        raise ConfigError(f"data.args.scaler=run standardises with the statistics of a scaled series run "
                          f"({stats_file} with mean and scale); {run_dir} has none: leave data.args.scaler out")
    config.data.args["scaler"] = {k: stats[k] for k in ("mean", "scale", "columns") if k in stats}


__all__ = ["VOCABULARY_FILES", "data_vocabulary", "vocabulary_of", "TRAINING_ONLY", "SOURCE_ARGS", "SPLIT_ARGS",
           "check_same_split", "real_data_paths", "same_source", "same_values", "saved_by_data", "run_preprocess",
           "preprocess_difference", "check_same_preprocess", "class_mismatch", "unicode_spelling",
           "dataset_defaults", "effective_data", "scale_as_the_run", "RESTORE", "run_record", "as_other_data",
           "check_other_series"]
