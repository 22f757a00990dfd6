"""The experiment a recipe describes: model + data + training, from YAML with `a.b=c` overrides.

    model: {architecture, core: {...}, tokenizer: {name, args}, head: {name, args}}
    data:  {name: reverse_digits, args: {...}}      # a dataset registered with register_data
    train: {steps: 600, batch_size: 64, lr: 3e-3, schedule: cosine, ...}
    init_from: runs/bert_mlm                        # optional: start from a pre-trained run's weights,
                                                    # or hf:FOLDER / timm:FILE#MODEL (interop/pretrained.py)

Unknown keys and wrong types fail with one line naming the key and the closest
valid ones (``xformer.config.from_dict``).
"""
from __future__ import annotations

import copy
import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ..config import ConfigError, apply_overrides, from_file, load_yaml, to_dict  # noqa: F401 (apply_overrides: importable here as before)
from ..models import ModelConfig
from ..registry import is_whole_number
from .implied_args import check_fixed_by_data, with_implied_args  # noqa: F401  (importable here as before)
from .switched import without_switched_settings
from .wandb_log import Wandb


@dataclass
class DataConfig:
    name: str = "reverse_digits"
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class EarlyStopping:
    """Track ``metric`` at every evaluation; the best checkpoint is kept; stop after
    ``patience`` evaluations without improvement (None: never stop early).

    ``mode`` left out (None) follows the metric's name, as timm's ``--eval-metric`` does: "max" for a score
    (a word of ``HIGHER_IS_BETTER`` in it: val_accuracy, val_top5_accuracy, val_macro_f1, val_exact_match, ...),
    else "min" (val_loss, val_mse, val_perplexity, val_bits_per_token, ...). ``mode_from_metric`` says it was
    left out (a resume then keeps the saved run's: ``resume.check_resume``)."""

    metric: str = "val_loss"
    mode: Literal["min", "max", None] = None  # None: follows the metric (one Literal: its error lists the choices)
    patience: int | None = None

    def __post_init__(self):
        _at_least("train.early_stopping.patience", self.patience, 1)
        self.mode_from_metric = self.mode is None  # an attribute, not a field: config.yaml holds the mode alone
        if self.mode is None:
            self.mode = metric_mode(self.metric)


HIGHER_IS_BETTER = ("accuracy", "f1", "mcc", "matthews", "auc", "exact_match", "bleu", "r2", "corr", "correlation")


def metric_mode(metric: str) -> Literal["min", "max"]:
    """"max" for a metric whose name holds a word of ``HIGHER_IS_BETTER`` (words split at "_"), else "min"."""
    name = f"_{metric.lower()}_"
    return "max" if any(f"_{word}_" in name for word in HIGHER_IS_BETTER) else "min"


@dataclass
class Ema:
    """An exponential moving average of the weights, kept beside them (timm's ``--model-ema``,
    ``timm.utils.ModelEmaV3``). After optimizer step t = 1, 2, ... every parameter is averaged:

        theta_ema <- d_t * theta_ema + (1 - d_t) * theta

    with d_1 = 0 (the average starts from the weights after the first step) and then
        d_t = decay                                 warmup: false
        d_t = min(decay, 1 - t ** -warmup_power)    warmup: true (timm's formula with gamma = 1;
                                                    power 2/3 reaches 0.999 after 31.6k steps, 3/4 after 10k)
    Floating-point buffers (BatchNorm's running statistics) are averaged too, integer ones copied
    (xformer/train/ema.py says why). When enabled, validation, the choice of
    the best checkpoint, metrics.json, ``xformer evaluate`` / ``generate`` and ``load_run`` use
    the averaged weights; each checkpoint stores them in ``ema.safetensors`` beside ``model.safetensors``.
    ``decay`` / ``warmup`` / ``warmup_power`` given while ``enabled`` is false are refused (they would do nothing),
    except all three at their defaults together: the section every run's config.yaml holds.
    """

    enabled: bool = False
    decay: float | None = None  # None (left out): the defaults below; given with the average off, refused
    warmup: bool | None = None
    warmup_power: float | None = None

    def __post_init__(self):
        given = _fill_defaults(self, EMA_DEFAULTS)
        if not 0 <= self.decay < 1:
            raise ConfigError(f"train.ema.decay must be in [0, 1), got {self.decay}; e.g. 0.9998")
        if not (math.isfinite(self.warmup_power) and self.warmup_power > 0):
            raise ConfigError(f"train.ema.warmup_power must be a finite number > 0, got {self.warmup_power}; e.g. 0.75")
        if not self.enabled:
            _refuse_unused("train.ema", given, EMA_DEFAULTS, "train.ema.enabled is false (no average is kept)",
                           "set train.ema.enabled=true")


@dataclass
class Sam:
    """Sharpness-Aware Minimization (Foret et al. 2021; ``adaptive``: ASAM, Kwon et al. 2021): each step's
    gradient is taken at the worst nearby weights, w + e(w), with

        e(w) = rho g / ||g||                                   (SAM)
        e(w) = rho T^2 g / ||T g||,   T = |w| + eta            (ASAM)

    g the gradient at w. ``rho`` = 0 (the default) is plain training; otherwise every step costs two
    forward / backward passes (xformer/train/sam.py). Typical rho: 0.05 (SAM), 0.5-2 (ASAM). ``adaptive`` / ``eta``
    given with rho 0 are refused, except both at their defaults together (as config.yaml holds them).
    """

    rho: float = 0.0
    adaptive: bool | None = None  # None (left out): the defaults below; given with SAM off, refused
    eta: float | None = None

    def __post_init__(self):
        given = _fill_defaults(self, SAM_DEFAULTS)
        if not (math.isfinite(self.rho) and self.rho >= 0):
            raise ConfigError(f"train.sam.rho must be a finite number >= 0, got {self.rho}; e.g. train.sam.rho=0.05")
        if not (math.isfinite(self.eta) and self.eta >= 0):
            raise ConfigError(f"train.sam.eta must be a finite number >= 0, got {self.eta}; e.g. 0.01")
        if self.rho == 0:
            _refuse_unused("train.sam", given, SAM_DEFAULTS, "train.sam.rho is 0 (plain training)",
                           "set train.sam.rho (e.g. 0.05; with adaptive 0.5-2)")


EMA_DEFAULTS = {"decay": 0.9998, "warmup": False, "warmup_power": 2 / 3}  # what Ema's None fields become
SAM_DEFAULTS = {"adaptive": False, "eta": 0.01}  # what Sam's None fields become


def _fill_defaults(section, defaults: dict) -> dict:
    """Set ``section``'s fields left out (None) to ``defaults``; return those given, {key: value}."""
    given = {key: getattr(section, key) for key in defaults if getattr(section, key) is not None}
    for key, value in defaults.items():
        if getattr(section, key) is None:
            setattr(section, key, value)
    return given


def _refuse_unused(prefix: str, given: dict, defaults: dict, why: str, fix: str) -> None:
    """Keys given that do nothing (``why``) are refused, as the run would look as if they applied; all of
    ``defaults`` given at their values together is accepted: the section every run's config.yaml holds."""
    if given and given != defaults:
        shown = ", ".join(f"{prefix}.{key}={str(value).lower() if isinstance(value, bool) else value}"
                          for key, value in given.items())
        raise ConfigError(f"{shown} does nothing: {why}; {fix}, or leave {'it' if len(given) == 1 else 'them'} out")


@dataclass
class TrainConfig:
    """How to train. ``batch_size`` is the global batch of one optimizer step: it is split into
    ``grad_accum`` micro-batches on each of the world's processes.

    Length: ``steps`` optimizer steps, or ``epochs`` passes over the training split.
    Schedules (all after ``warmup_steps`` of linear warmup):
      cosine       lr_t = min_lr + (lr - min_lr) (1 + cos(pi t / T)) / 2
      linear       lr_t = lr - (lr - min_lr) t / T   (Hugging Face's default, get_linear_schedule_with_warmup)
      constant     lr_t = lr
      step         lr_t = lr * gamma ** floor(t / step_size)
      epoch_decay  lr kept for ``decay_after_epochs`` epochs, then multiplied by ``gamma`` each
                   epoch (PatchTST's per-epoch adjustment)
    ``eval_every``: evaluate on the validation split and save a checkpoint every N steps.
    ``ema``: evaluate and keep an exponential moving average of the weights (see ``Ema``).
    ``sam``: sharpness-aware minimization (see ``Sam``; off unless ``sam.rho`` > 0).
    ``aug_repeats``: repeated augmentation (DeiT; timm's ``--aug-repeats``): each drawn example appears this
    many times in a row in the epoch's order, each copy augmented anew (``trainer.RepeatedAugmentSampler``).
    ``max_seconds``: stop (after a last evaluation and checkpoint) once training has run this long;
    the schedule still spans ``steps``, so a run cut short ends before its learning rate has decayed.
    """

    steps: int | None = None
    epochs: int | None = None
    batch_size: int = 32
    grad_accum: int = 1
    lr: float = 1e-3
    weight_decay: float = 0.01
    optimizer: Literal["adamw", "sgd"] = "adamw"  # sgd: timm's --opt sgd (momentum, Nesterov); optim.py
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW's
    momentum: float | None = None  # SGD's (None: 0.9)
    nesterov: bool | None = None  # SGD's (None: true, as timm's "sgd"; false is its "momentum")
    schedule: Literal["cosine", "linear", "constant", "step", "epoch_decay"] = "cosine"
    warmup_steps: int = 0
    min_lr: float = 0.0
    step_size: int = 1000
    gamma: float = 0.9
    decay_after_epochs: int = 2
    clip: float | None = 1.0
    eval_every: int = 100
    eval_batches: int | None = None
    eval_batch_size: int | None = None
    log_every: int = 10
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)
    ema: Ema = field(default_factory=Ema)
    sam: Sam = field(default_factory=Sam)
    keep_last: int = 2
    max_seconds: float | None = None
    precision: Literal["fp32", "bf16"] = "fp32"
    compile: bool = False
    activation_checkpointing: bool = False  # the blocks recompute their activations in backward (recompute.py)
    layer_decay: float | None = None  # timm's --layer-decay: lr * decay ** (L + 1 - layer) (optim.py)
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    num_workers: int = 0
    aug_repeats: int = 1
    distributed: Literal["ddp", "fsdp"] = "ddp"
    wandb: Wandb = field(default_factory=Wandb)  # Weights & Biases logging (train/wandb_log.py); off by default

    def __post_init__(self):
        if self.steps is None and self.epochs is None:
            raise ConfigError("train: give exactly one of train.steps and train.epochs")
        if self.steps is not None and self.epochs is not None:  # e.g. train.epochs=N on a recipe of steps
            raise ConfigError(f"train: give exactly one of train.steps and train.epochs, got train.steps={self.steps} "
                              f"and train.epochs={self.epochs}; set the other to null, e.g. train.epochs="
                              f"{self.epochs} with train.steps=null")
        for name in ("steps", "epochs", "batch_size", "grad_accum", "eval_every", "log_every", "keep_last",
                     "step_size", "eval_batches", "eval_batch_size", "decay_after_epochs", "aug_repeats"):
            _at_least(f"train.{name}", getattr(self, name), 1,
                      optional=name in ("steps", "epochs", "eval_batches", "eval_batch_size"))
        for name in ("seed", "warmup_steps", "num_workers"):
            _at_least(f"train.{name}", getattr(self, name), 0, optional=False)
        if self.seed >= 2 ** 32:  # numpy's generators take 32-bit seeds
            raise ConfigError(f"train.seed must be below 2**32 = {2 ** 32}, got {self.seed}")
        if not (_finite(self.lr) and self.lr > 0):
            raise ConfigError(f"train.lr must be a finite number > 0, got {self.lr!r}; e.g. train.lr=3e-4")
        for name in ("weight_decay", "min_lr"):
            value = getattr(self, name)
            if not (_finite(value) and value >= 0):
                raise ConfigError(f"train.{name} must be a finite number >= 0, got {value!r}")
        if self.schedule == "linear" and self.min_lr > self.lr:  # a linear decay cannot rise
            raise ConfigError(f"train.min_lr={self.min_lr} is above train.lr={self.lr}: the linear schedule decays "
                              "from lr to min_lr; give a min_lr at most lr")
        if self.layer_decay is not None and not (_finite(self.layer_decay) and 0 < self.layer_decay <= 1):
            raise ConfigError(f"train.layer_decay must be in (0, 1] (or null), got {self.layer_decay!r}; e.g. 0.75")
        if not (_finite(self.gamma) and self.gamma > 0):
            raise ConfigError(f"train.gamma must be a finite number > 0, got {self.gamma!r}; e.g. 0.9")
        if len(self.betas) != 2 or not all(_finite(b) and 0 <= b < 1 for b in self.betas):
            raise ConfigError(f"train.betas must be two numbers in [0, 1), got {list(self.betas)}; "
                              "e.g. train.betas=[0.9,0.999]")
        for name in ("clip", "max_seconds"):
            value = getattr(self, name)
            if value is not None and not (_finite(value) and value > 0 or value == math.inf):
                raise ConfigError(f"train.{name} must be > 0 (or null), got {value!r}")
        cpus = os.cpu_count() or 1
        if self.num_workers > cpus:  # each worker is a process: more than the CPUs only stalls the machine
            raise ConfigError(f"train.num_workers={self.num_workers} is more than this machine's {cpus} CPUs; "
                              f"use at most {cpus} (0 loads in the training process)")


DISTILL_DEFAULTS = {"kind": "soft", "alpha": 0.5, "temperature": 3.0}  # what Distill's None fields become


@dataclass
class Distill:
    """Knowledge distillation from a trained classification run (the ``teacher`` run folder: a CNN
    baseline run or any classifier of the same number of classes), DeiT's two kinds (Touvron et al. 2021):

        soft  L = (1 - alpha) CE(y, z_s) + alpha tau^2 KL(softmax(z_t / tau) || softmax(z_s / tau))
        hard  L = (1 - alpha) CE(y, z_s) + alpha CE(argmax z_t, z_s)

    z_s, z_t: student and teacher logits on the same (augmented) batch; CE(y, z_s) is the student's own
    loss (label smoothing, MixUp/CutMix targets). ``alpha`` = 0 is plain training, and so is ``teacher``
    null (the default). See xformer/train/distill.py.

    ``kind`` / ``alpha`` / ``temperature`` left out (None) take the defaults soft / 0.5 / 3; given without a
    ``teacher`` they are refused (they would do nothing, and the run would look distilled), except all three at
    their defaults together: the section every run's config.yaml holds.
    """

    teacher: str | None = None
    kind: Literal["soft", "hard"] | None = None
    alpha: float | None = None
    temperature: float | None = None

    def __post_init__(self):
        given = {key: getattr(self, key) for key in DISTILL_DEFAULTS if getattr(self, key) is not None}
        for key, value in DISTILL_DEFAULTS.items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        if not (math.isfinite(self.alpha) and 0 <= self.alpha <= 1):
            raise ConfigError(f"distill.alpha must be in [0, 1], got {self.alpha}; e.g. distill.alpha=0.5")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ConfigError(f"distill.temperature must be > 0, got {self.temperature}; e.g. distill.temperature=3")
        if self.teacher is None and given and given != DISTILL_DEFAULTS:
            raise ConfigError(f"distill.kind / alpha / temperature are set but distill.teacher is not (given: "
                              f"{', '.join(f'distill.{k}={v}' for k, v in given.items())}); name the teacher run "
                              "(distill.teacher=RUN_DIR) or leave them out")


def _at_least(key: str, value: int | None, low: int, optional: bool = True) -> None:
    """An integer setting (None allowed where the field is ``optional``) must be a whole number (not a bool, not
    a float such as 1.5, which a saved config.yaml could not be read back with) >= ``low``."""
    if (value is not None or not optional) and not is_whole_number(value):
        raise ConfigError(f"{key} must be a whole number >= {low}, got {value!r}")
    if value is not None and value < low:
        raise ConfigError(f"{key} must be >= {low}, got {value}")


def _finite(value) -> bool:
    """A finite number (a bool is no number here; a str would reach math.isfinite as a TypeError)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class ExperimentConfig:
    """A recipe: model, data, train, and optionally the pre-trained weights to start from.

    ``init_from``: fine-tune from a pre-trained run. A run folder (its best, else latest,
    checkpoint), its ``checkpoints/`` folder, or one checkpoint folder (``.../step_00000600``).
    After the model is built, every pre-trained tensor whose name and shape match is copied
    into it, so the tokenizer and core of a masked-LM run start a classifier while the new
    head (other names or shapes) keeps its fresh initialisation; one line reports the count
    and the parts left fresh. It is an error (one line naming the fix) when the pre-trained
    run's config.yaml has another model.architecture or model.core (dropout, attn_dropout,
    drop_path and init may differ) or is a baseline (a baseline's run starts only a run of the same
    baseline: its tensors of matching shapes, at least one), when no core tensor matches, when a tokenizer / core
    tensor matches by name but not by shape (another vocabulary or max_positions), or when
    this run's vocabulary differs from the pre-trained RUN_DIR/tokenizer: pass that folder
    as ``data.args.tokenizer``.
    Only a fresh run reads it: ``--resume`` and ``xformer evaluate`` load the run's own
    checkpoint.

    ``init_from: hf:FOLDER`` (a local Hugging Face GPT-2, BERT, ViT or PatchTSTForPrediction folder: config.json and
    model.safetensors or pytorch_model.bin) and ``init_from: timm:FILE#MODEL`` (a timm ViT state dict,
    .safetensors or .pth, and the timm model name; ``#MODEL,key=value`` adds create_model arguments)
    start from another library's checkpoint (xformer/interop/pretrained.py): its architecture, core and
    tokenizer replace the recipe's (a recipe that gives another architecture, a core key set to other
    than its default or a tokenizer argument that differs is refused; an omitted model.core or
    model.tokenizer is taken from the checkpoint; dropout, drop path and init are the recipe's, 0 /
    the default when it leaves them out), the recipe gives the head (the data gives n_classes), and a
    GPT-2 / BERT folder's tokenizer becomes ``data.args.tokenizer`` (saved as RUN_DIR/tokenizer; PatchTST has
    none and reads series windows of any number of series). Nothing is downloaded.

    ``distill``: train against a teacher run as well as the labels (see ``Distill``); no teacher: plain training.
    The run folder holds the student alone; ``--resume`` loads the teacher again from the same folder.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=100))
    init_from: str | None = None
    distill: Distill = field(default_factory=Distill)

    def __post_init__(self):
        if self.init_from is not None and not (isinstance(self.init_from, str) and self.init_from.strip()):
            raise ConfigError(f"init_from must be a run folder, hf:FOLDER or timm:FILE#MODEL, got {self.init_from!r}")
        if isinstance(self.init_from, str) and self.init_from.startswith(("hf:", "timm:")):
            from ..interop.pretrained import parse_source

            parse_source(self.init_from)  # the form only: the files are read when a fresh run starts


def recipe_dict(config: ExperimentConfig) -> dict:
    """The resolved experiment as config.yaml holds it (a baseline's model section is only its baseline)."""
    recipe = to_dict(config)
    if config.model.baseline is not None:
        recipe["model"] = {"baseline": recipe["model"]["baseline"]}
    return recipe


def load_experiment(path: str | Path, overrides: list[str] = ()) -> ExperimentConfig:
    """The experiment of a recipe file with ``overrides``; a baseline's recipe whose model section holds keys the
    baseline does not read (core, tokenizer, head, architecture) is refused, as they would be dropped unseen."""
    read = load_yaml(path)
    recipe = apply_overrides(copy.deepcopy(read), list(overrides))
    without_switched_settings(recipe, overrides)
    model = recipe.get("model")
    if isinstance(model, dict) and isinstance(model.get("baseline"), dict) and "name" in model["baseline"]:
        unread = [f"model.{key}" for key in model if key != "baseline"]
        if unread:
            raise ConfigError(f"{', '.join(unread)} {'is' if len(unread) == 1 else 'are'} not read by the "
                              f"{model['baseline'].get('name')} baseline (model.baseline takes its settings in "
                              f"model.baseline.args); remove {'it' if len(unread) == 1 else 'them'}, or model.baseline "
                              "for a transformer")
    return from_file(ExperimentConfig, read, path, recipe)
