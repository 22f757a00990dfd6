"""Knowledge distillation from a trained classification run (Hinton et al. 2015; DeiT, Touvron et al. 2021).

The teacher is another run folder (``distill.teacher``: the project's CNN baseline, a ViT, any classifier
with the same number of classes), loaded with its best weights, frozen, in eval mode, on the training
device. On every training batch it sees the same (augmented) inputs as the student, without gradients, and
the student's loss becomes, with z_s, z_t the student's and teacher's logits (B, K):

    soft (Hinton; DeiT eq. 2):
        L = (1 - alpha) CE(y, z_s) + alpha tau^2 KL(softmax(z_t / tau) || softmax(z_s / tau))
        KL(p || q) = 1/B sum_i sum_k p_ik (log p_ik - log q_ik)        (mean over examples)
    hard (DeiT eq. 3, which uses alpha = 1/2):
        L = (1 - alpha) CE(y, z_s) + alpha CE(argmax_k z_t, z_s)

CE(y, z_s) is the student's own loss as its head computes it (label smoothing, MixUp/CutMix soft targets);
tau^2 keeps the soft term's gradients on the scale of the CE term's as tau changes (Hinton et al.). DeiT's
code divides its summed KL by B*K instead of B (the same as alpha / K here). This is DeiT without the
distillation token: the student is unchanged, so its run folder evaluates, resumes and predicts like any
other, and ``alpha`` = 0 is plain training bit for bit.

Mechanism: a forward hook on the student (``attach_teacher``) rewrites the ``loss`` of the student's output
dict in training mode only. The trained module stays the student itself, so the optimizer, checkpoints
(state-dict names), the weight average (train.ema), DDP and the reports see nothing else; validation and
test losses are the student's own CE. ``loss_weight`` (B) is kept: the combined loss is a mean over the
same B examples, as the trainer's weighting needs.

The teacher folder: a relative ``distill.teacher`` is relative to the working directory the run starts in;
the run records it as an absolute path (config.yaml and every checkpoint's state), so ``--resume`` finds
the same teacher from any directory. Before anything is written, the teacher must take this run's inputs:
a classifier of the same number of classes K reading images of the same (C, H, W), normalised the same way
(mean/std), as the student's (a teacher fed images of another size would fail mid-run, or, with resampled
positions, quietly mislead; one fed images normalised otherwise would quietly mislead).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..batch import LABELS
from ..config import ConfigError, load_yaml, read_json, to_dict
from ..folders import is_hf_folder
from .config import Distill, ExperimentConfig
from .rng import rng_state, set_rng_state


def soft_distillation_loss(student: Tensor, teacher: Tensor, tau: float) -> Tensor:
    """tau^2 KL(softmax(z_t / tau) || softmax(z_s / tau)), summed over classes, averaged over the batch."""
    return F.kl_div(F.log_softmax(student.float() / tau, dim=-1), F.log_softmax(teacher.float() / tau, dim=-1),
                    reduction="batchmean", log_target=True) * tau ** 2


def hard_distillation_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """CE(argmax_k z_t, z_s): the teacher's decisions as labels."""
    return F.cross_entropy(student.float(), teacher.argmax(dim=-1))


def distillation_loss(ce: Tensor, student: Tensor, teacher: Tensor, config: Distill) -> Tensor:
    """(1 - alpha) CE + alpha * (the soft or hard term); see the module docstring."""
    term = (soft_distillation_loss(student, teacher, config.temperature) if config.kind == "soft"
            else hard_distillation_loss(student, teacher))
    return (1 - config.alpha) * ce + config.alpha * term


class Distillation:
    """The forward hook that adds the teacher's term to the student's loss (training mode only)."""

    def __init__(self, teacher: nn.Module, config: Distill):
        self.teacher, self.config = teacher, config

    def __call__(self, module: nn.Module, args: tuple, out: dict) -> dict | None:
        if not module.training or "loss" not in out:
            return None  # evaluation: the student's own loss
        batch = {k: v for k, v in args[0].items() if k != LABELS}
        with torch.no_grad():
            teacher_logits = self.teacher(batch)["logits"]
        return {**out, "loss": distillation_loss(out["loss"], out["logits"], teacher_logits, self.config)}

    def __deepcopy__(self, memo):  # a copy of the student (timm's weight average) shares the frozen teacher
        return self


def n_classes(model: dict) -> int | None:
    """The number of classes a config.yaml ``model`` section (or a resolved ModelConfig's dict) names."""
    if model.get("baseline"):
        part = model["baseline"]  # an image baseline (cnn, mlp) takes n_classes; a forecaster does not
    elif (model.get("head") or {}).get("name") in ("classification", "classification_drloc"):
        part = model["head"]
    else:
        return None
    return (part.get("args") or {}).get("n_classes")


def image_input(model: dict) -> tuple[int | None, int, int] | None:
    """(C, H, W) of the images a config.yaml ``model`` section (or a resolved ModelConfig's dict) reads: its
    image baseline's or image tokenizer's ``image_size`` and ``channels``; None for a model of other inputs."""
    args = ((model.get("baseline") or model.get("tokenizer") or {}).get("args")) or {}
    size = args.get("image_size")
    if size is None:
        return None
    h, w = tuple(size) if isinstance(size, (list, tuple)) and len(size) == 2 else (size, size)
    return args.get("channels"), h, w


def _images(shape: tuple | None) -> str:
    return "no images" if shape is None else f"({', '.join('?' if v is None else str(v) for v in shape)}) images"


def _shape_fix(theirs: tuple | None, ours: tuple | None) -> str:
    """The data arguments that would give this run the teacher's (C, H, W): channels and/or image_size."""
    if theirs is None or ours is None:
        return "distill from a teacher of this run's kind of inputs"
    channels = theirs[0] != ours[0] and theirs[0] is not None
    keys = ([f"data.args.channels={theirs[0]} (image_folder)"] if channels else []) + \
        ([f"data.args.image_size={theirs[1] if theirs[1] == theirs[2] else list(theirs[1:])}"]
         if theirs[1:] != ours[1:] else [])
    if not keys:  # channels unknown on one side: the size agrees, so the channels are what differs
        return "set this run's data.args.channels to the teacher's"
    return f"set this run's {' and '.join(keys)} (the teacher's)"


def teacher_path(teacher: str) -> Path:
    """``distill.teacher`` as an absolute path: ~ expanded, a relative path taken from the current working
    directory (the one the run starts in). Not resolved through symlinks: the path the user wrote is kept."""
    return Path(os.path.abspath(os.path.expanduser(teacher)))


def check_teacher(config: ExperimentConfig) -> Path:
    """The teacher run folder of ``config.distill`` (absolute, see ``teacher_path``) after checking it is a
    classification run with this student's number of classes, reading images of the student's (C, H, W)
    normalised as the student's data does (one ConfigError naming the fix otherwise). ``config``: resolved."""
    teacher = teacher_path(config.distill.teacher)
    if is_hf_folder(teacher):  # e.g. a BertModel's
        raise ConfigError(f"distill.teacher {teacher}: a Hugging Face folder, not a run; a teacher is a trained "
                          f"classification run: fine-tune it first (xformer train RECIPE --init-from hf:{teacher}) "
                          "and give that run's --out folder")
    if not (teacher / "config.yaml").is_file() or not (teacher / "checkpoints").is_dir():
        raise ConfigError(f"distill.teacher {teacher}: not a run folder (no config.yaml and checkpoints/); "
                          "give the --out folder of a trained classification run, e.g. runs/cnn_digits")
    their_config = load_yaml(teacher / "config.yaml")
    their_model = their_config.get("model") or {}
    theirs = n_classes(their_model)
    if theirs is None:
        raise ConfigError(f"distill.teacher {teacher}: not a classification run (no head.args.n_classes in its "
                          "config.yaml); give a classifier's run folder")
    our_model = to_dict(config.model)
    ours = n_classes(our_model)
    if ours is None:
        raise ConfigError("distill needs a classification student (model.head.name: classification, "
                          "classification_drloc or an image baseline); remove the distill section")
    if theirs != ours:
        raise ConfigError(f"distill.teacher {teacher}: the teacher has {theirs} classes, this run {ours}; "
                          "give a teacher trained on the same classes")
    their_input, our_input = image_input(their_model), image_input(our_model)
    if their_input != our_input:
        raise ConfigError(f"distill.teacher {teacher}: the teacher reads (C, H, W) = {_images(their_input)}, this "
                          f"run's model {_images(our_input)}; give a teacher trained on images of this run's size "
                          f"and channels, or {_shape_fix(their_input, our_input)}")
    their_norm = normalisation(their_config)
    our_norm = normalisation(to_dict(config))
    if None not in (their_norm, our_norm) and not _same_numbers(their_norm, our_norm):
        raise ConfigError(f"distill.teacher {teacher}: the teacher was trained on images normalised with "
                          f"{_stats(their_norm)}, this run's data gives {_stats(our_norm)}; give a teacher trained "
                          "with this run's normalisation, or set this run's data.args.mean and data.args.std "
                          "(image_folder) to the teacher's")
    return teacher


def normalisation(experiment: dict) -> tuple | None:
    """(mean, std) of the evaluation transform an experiment's image data applies, x' = (x - mean) / std per
    channel ((None, None): pixels in [0, 1] as they are), from its config (``default_preprocess``, what the
    image datasets write to preprocess.json); None when its data is not a known image dataset."""
    from ..data.images import default_preprocess

    data, shape = experiment.get("data") or {}, image_input(experiment.get("model") or {})
    if shape is None:
        return None
    spec = default_preprocess(str(data.get("name")), data.get("args") or {}, shape[1:], shape[0])
    return None if spec is None else (spec["mean"], spec["std"])


def _same_numbers(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, (tuple, list)):
        return isinstance(b, (tuple, list)) and len(a) == len(b) and all(map(_same_numbers, a, b))
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def _stats(norm: tuple) -> str:
    mean, std = norm
    if mean is None:
        return "none (pixels in [0, 1])"
    return f"mean {[round(v, 4) for v in mean]} std {[round(v, 4) for v in std]}"


TEACHER_FILE = "teacher.json"  # in the student's run folder: the teacher weights it is trained against


def teacher_identity(teacher: Path) -> dict:
    """What identifies the weights a teacher run lends (those ``load_run_model`` reads: its best, else latest,
    checkpoint; the moving average where it kept one): {"checkpoint", "weights" (the file), "sha256" (of it)}."""
    from .checkpoint import EMA_FILE, MODEL_FILE, checkpoint_dir

    folder = checkpoint_dir(Path(teacher) / "checkpoints", "best")
    file = EMA_FILE if (folder / EMA_FILE).is_file() else MODEL_FILE
    digest = hashlib.sha256()
    with open(folder / file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"checkpoint": folder.name, "weights": file, "sha256": digest.hexdigest()}


def recorded_teacher(run_dir: Path) -> dict | None:
    """RUN/teacher.json ({"teacher": path, **teacher_identity}); None for a run that predates it. A hand edit that
    left it unreadable is one line: read as no record, the resume would not check its teacher."""
    path = Path(run_dir) / TEACHER_FILE
    if not path.is_file():
        return None
    fix = ("it records the teacher weights the run was trained against, written by xformer train; restore it from "
           "a copy of the run")
    recorded = read_json(path, fix)
    if not isinstance(recorded, dict) or not all(isinstance(recorded.get(key), str)
                                                 for key in ("checkpoint", "weights", "sha256")):
        raise ConfigError(f'{path} does not hold {{"teacher": ..., "checkpoint": ..., "weights": ..., "sha256": '
                          f'...}}; {fix}')
    return recorded


def record_teacher(run_dir: Path, teacher: str, identity: dict) -> None:
    from ..folders import write_atomically

    write_atomically(Path(run_dir) / TEACHER_FILE, json.dumps({"teacher": teacher, **identity}, indent=1) + "\n")


def lends_recorded_weights(run_dir: Path, teacher: str) -> bool:
    """Whether the run folder ``teacher`` lends the weights RUN/teacher.json records (e.g. the teacher moved)."""
    recorded, path = recorded_teacher(run_dir), teacher_path(teacher)
    if recorded is None or not (path / "checkpoints").is_dir():
        return False
    try:
        identity = teacher_identity(path)
    except (OSError, ValueError, KeyError):  # no readable checkpoint pointer: not the recorded teacher
        return False
    return all(recorded.get(key) == value for key, value in identity.items())


def check_resumed_teacher(run_dir: Path, teacher: str) -> None:
    """A resumed student continues exactly only against the teacher weights it started with: its teacher must
    still be a run folder at ``teacher`` and (RUN/teacher.json) lend the same checkpoint. One line otherwise."""
    path, recorded = teacher_path(teacher), recorded_teacher(run_dir)
    if not (path / "config.yaml").is_file() or not (path / "checkpoints").is_dir():
        elsewhere = " or give its new place with distill.teacher=NEW_PATH" if recorded is not None else ""
        raise ConfigError(f"cannot resume {run_dir}: its teacher run {path} (distill.teacher) is no longer there; "
                          f"move the teacher's run folder back to {path}{elsewhere}")
    if recorded is None or lends_recorded_weights(run_dir, teacher):
        return
    now = teacher_identity(path)
    raise ConfigError(f"cannot resume {run_dir}: its teacher {path} now lends {now['checkpoint']} (sha256 "
                      f"{now['sha256'][:12]}), not the {recorded.get('checkpoint')} (sha256 "
                      f"{str(recorded.get('sha256'))[:12]}) the run was trained against "
                      f"({Path(run_dir) / TEACHER_FILE}); put that teacher back, or start a new run from this one "
                      "with init_from")


def attach_teacher(student: nn.Module, config: ExperimentConfig, device: torch.device,
                   load_run_model: Callable[[Path], tuple[ExperimentConfig, nn.Module]],
                   class_names: list[str] | None = None) -> Distillation:
    """Load ``config.distill.teacher`` (checked by ``check_teacher``, and its classes.json against the
    student's ``class_names``: a teacher of other classes, or of the same in another order, would teach wrong
    labels) frozen on ``device``, hook it to the student, and record its absolute path in
    ``config.distill.teacher``. ``load_run_model``: xformer.train.run's (passed in, as run.py imports this
    module). Every random generator is left as it was, so the student's run draws what it would without a
    teacher."""
    teacher_dir = check_teacher(config)
    theirs = teacher_dir / "classes.json"
    if class_names is not None and theirs.is_file():
        fix = "restore it from a copy of the teacher's run"
        recorded = read_json(theirs, fix)
        their_names = recorded.get("class_names") if isinstance(recorded, dict) else None
        if not isinstance(their_names, list):
            raise ConfigError(f'{theirs} does not hold {{"class_names": [...]}}; {fix}')
        if their_names != list(class_names):
            raise ConfigError(f"distill.teacher {teacher_dir}: its classes {their_names} are not this run's "
                              f"{list(class_names)} (names and order); give a teacher trained on these classes")
    # ``config`` is the resolved experiment run.py goes on to write to config.yaml and to every checkpoint's
    # state: recording the absolute path there lets a resume from another directory load the same teacher
    config.distill = dataclasses.replace(config.distill, teacher=str(teacher_dir))
    generators = rng_state()  # building the teacher's modules draws initial weights
    _, teacher = load_run_model(teacher_dir)
    set_rng_state(generators)
    teacher = teacher.to(device).eval().requires_grad_(False)
    hook = Distillation(teacher, config.distill)
    hook.identity = teacher_identity(teacher_dir)  # what the student's run records (TEACHER_FILE)
    student.register_forward_hook(hook)
    return hook


__all__ = ["TEACHER_FILE", "Distillation", "attach_teacher", "check_resumed_teacher", "check_teacher",
           "distillation_loss", "hard_distillation_loss", "image_input", "lends_recorded_weights", "normalisation",
           "record_teacher", "recorded_teacher", "soft_distillation_loss", "teacher_identity", "teacher_path"]
