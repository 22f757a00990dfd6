"""Refusals a training run makes before it writes anything, for combinations no single config part can see.

- ``check_fresh_run``: ``check_inputs_apart`` and ``optim.check_read_settings``, for a new run only.
- ``check_inputs_apart``: what a fresh run reads (the teacher, the init_from run, the data) is never its ``--out``
  folder (nor inside it), which ``--overwrite`` would replace.
- ``check_smoothed_once``: with MixUp/CutMix, ``data.args.label_smoothing`` smooths the mixed targets y~;
  the head's own ``label_smoothing`` eps' would smooth them again, y~ (1 - eps') + eps' / K, so both > 0
  is refused.
- ``check_even_mixup_batch``: timm's Mixup pairs image i with image B-1-i of a micro-batch, so a micro-batch
  of odd size B (train.batch_size / (grad_accum x processes), every one of them, as the loader drops the
  last partial batch) could not be mixed: the whole run would train without MixUp/CutMix and without the
  data's label smoothing.
- ``check_teacher_vocabulary``: a teacher that reads token ids must read the student's vocabulary: with another,
  the same id means another piece to it (or lies beyond its embedding table).
- ``check_trains``: data built without a training split (data to evaluate a run on) is refused, naming the way on.
- ``check_repeats_augmented``: ``train.aug_repeats`` > 1 repeats each drawn example so that every copy is augmented
  anew; on data that draws no random augmentation the copies would be identical (a plain repetition).
"""
from __future__ import annotations

from pathlib import Path

from torch.utils.data import Subset

from ..config import ConfigError
from ..data.registry import DATASETS, DataBundle
from .config import ExperimentConfig
from .distill import teacher_path
from .optim import check_read_settings
from .resume import DATA_PATHS
from .same_data import data_vocabulary, vocabulary_of


def check_fresh_run(config: ExperimentConfig, run_dir: Path) -> None:
    """What only a new run checks: its inputs apart from its folder, and no setting its schedule or optimizer would
    not read (an older run's config.yaml may hold one: it resumes and is evaluated as it was trained)."""
    check_inputs_apart(config, run_dir)
    check_read_settings(config.train)


def check_inputs_apart(config: ExperimentConfig, run_dir: Path) -> None:
    """What a fresh run reads (``distill.teacher``, ``init_from``, the data's files and folders) must lie outside
    its run folder, which an ``--overwrite`` replaces: the run it fine-tunes from, or its own data, would be
    deleted once the new run has started (and the new run could no longer be resumed or evaluated)."""
    out = Path(run_dir).resolve()
    reads = [("distill.teacher", config.distill.teacher, " give the student a folder of its own (--out)")]
    if config.init_from:
        kind, _, rest = config.init_from.partition(":")
        source = rest.partition("#")[0] if kind in ("hf", "timm") else config.init_from
        reads.append(("init_from", source, " give the new run a folder of its own (--out)"))
    for key in (*DATA_PATHS, "tokenizer"):
        values = config.data.args.get(key)
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, str) and value and (key != "tokenizer" or value not in ("char", "wordpiece")):
                reads.append((f"data.args.{key}", value, " move the data out of it first, or give the run another "
                                                         "folder (--out)"))
    for key, value, fix in reads:
        if value is None:
            continue
        path = teacher_path(value).resolve()
        if path == out or path.is_relative_to(out):
            where = "is" if path == out else "lies inside"
            raise ConfigError(f"{key} {value} {where} this run's folder {run_dir}, which the new run would replace;"
                              f"{fix}")


def check_smoothed_once(config: ExperimentConfig) -> None:
    """Label smoothing of MixUp/CutMix targets in the data and in the model at once is refused."""
    data = config.data.args
    mixed = (data.get("mixup") or 0) > 0 or (data.get("cutmix") or 0) > 0
    if not mixed or not (data.get("label_smoothing") or 0) > 0:
        return
    model = config.model
    part = model.baseline if model.baseline is not None else model.head
    key = "model.baseline.args" if model.baseline is not None else "model.head.args"
    theirs = part.args.get("label_smoothing") or 0
    if theirs > 0:
        raise ConfigError(f"data.args.label_smoothing={data['label_smoothing']} smooths the MixUp/CutMix targets "
                          f"and {key}.label_smoothing={theirs} would smooth them again; set "
                          f"{key}.label_smoothing=0 (or data.args.label_smoothing=0)")


def check_even_mixup_batch(trainer) -> None:
    """MixUp/CutMix (the data's collate mixes) need micro-batches of even size."""
    if getattr(trainer.data.collate, "mixup", None) is None or trainer.micro % 2 == 0:
        return
    cfg, split = trainer.cfg, trainer.cfg.grad_accum * trainer.world.size
    sizes = [size * split for size in (trainer.micro - 1, trainer.micro + 1) if size > 0]
    over = f" (over grad_accum={cfg.grad_accum} x {trainer.world.size} processes)" if split > 1 else ""
    raise ConfigError(f"train.batch_size={cfg.batch_size} makes micro-batches of {trainer.micro} images{over}, but "
                      "MixUp/CutMix mix the images of a micro-batch in pairs and need an even number; use "
                      f"train.batch_size={' or '.join(map(str, sizes))}")


def check_teacher_vocabulary(config: ExperimentConfig, data: DataBundle) -> None:
    """The teacher run's vocabulary (TEACHER/tokenizer) must be the one this run's data writes, when either has one."""
    if config.distill.teacher is None:
        return
    teacher = teacher_path(config.distill.teacher)
    theirs, ours = vocabulary_of(teacher / "tokenizer"), data_vocabulary(data)
    if theirs == ours:  # the same vocabulary, or neither reads text of a vocabulary of its own
        return
    if not ours:
        problem = f"the teacher reads token ids of its vocabulary ({teacher / 'tokenizer'}), this run's data none"
        fix = "give a teacher trained on this run's kind of inputs"
    elif not theirs:
        problem = f"this run reads token ids of its data's vocabulary, the teacher has none ({teacher / 'tokenizer'})"
        fix = "give a teacher trained on this run's text and vocabulary"
    else:
        problem = (f"the teacher's vocabulary ({teacher / 'tokenizer'}) is not this run's: the same token id would "
                   "mean another piece to it")
        fix = (f"pass data.args.tokenizer={teacher / 'tokenizer'} to read the teacher's, or give a teacher trained "
               "with this run's vocabulary")
    raise ConfigError(f"distill.teacher {config.distill.teacher}: {problem}; {fix}")


def check_trains(config: ExperimentConfig, data: DataBundle) -> None:
    """``xformer train`` needs training examples; data of none is data to evaluate a run on."""
    if data.train is not None:
        return
    if config.data.name == "token_file":  # prepared with --val-fraction 1: a held-out text in a run's vocabulary
        path = config.data.args.get("path")
        raise ConfigError(f"{path} is an evaluation folder (no train.bin): it scores a trained run, xformer evaluate "
                          f"RUN data.args.path={path}; train on a folder prepared with a training part (--val-fraction "
                          "below 1)")
    if config.data.name == "image_folder":  # val/ and test/ only, or class folders right under root
        root = config.data.args.get("root")
        raise ConfigError(f"image_folder: {root} has no train/ folder, so it is data to evaluate a run on (xformer "
                          f"evaluate RUN data.args.root={root}); to train on it, lay it out as train/ and val/ with "
                          f"python data/image_folder/prepare.py {root}")
    raise ConfigError(f"data '{config.data.name}' has no training split (data to evaluate a run on: a text all "
                      "val/test); give data with training examples")


RANDOM_BATCHES = ("text_mlm",)  # xformer's data (not images) whose training batches are drawn anew: fresh masks
RANDOM_STEPS = ("RandAugment", "TrivialAugmentWide", "AutoAugment", "AugMix")  # besides torchvision's Random*


def draws_augmentation(name: str, data: DataBundle) -> bool | None:
    """Whether the training examples of data ``name`` come out differently each time they are drawn: MixUp/CutMix
    in the collate, a random step in the images' training transform, or fresh masks; None when it cannot be told
    (data registered outside xformer)."""
    if getattr(data.collate, "mixup", None) is not None or name in RANDOM_BATCHES:
        return True
    items = data.train
    while isinstance(items, Subset):
        items = items.dataset
    steps = getattr(getattr(items, "transform", None), "transforms", None) or []
    if any(type(step).__name__.startswith("Random") or type(step).__name__ in RANDOM_STEPS for step in steps):
        return True
    factory = DATASETS.get(name)
    return False if factory is not None and factory.__module__.startswith("xformer.data.") else None


def check_repeats_augmented(config: ExperimentConfig, data: DataBundle) -> None:
    """``train.aug_repeats`` > 1 needs data that augments its training examples at random."""
    repeats = config.train.aug_repeats
    if repeats == 1 or draws_augmentation(config.data.name, data) is not False:
        return
    images = "image_size" in data.model_args.get("tokenizer", {})
    turn_on = ("turn one on (data.args.hflip, crop_scale, affine, auto_augment, random_erasing, mixup or cutmix, "
               "as the data takes them)") if images else "use data that augments its examples"
    raise ConfigError(f"train.aug_repeats={repeats} repeats each training example {repeats} times so that each copy "
                      f"is augmented anew, but data {config.data.name!r} draws no random augmentation here: the "
                      f"copies would be identical; set train.aug_repeats=1, or {turn_on}")


__all__ = ["check_even_mixup_batch", "check_repeats_augmented", "check_smoothed_once", "check_inputs_apart",
           "check_teacher_vocabulary", "check_trains", "draws_augmentation"]
