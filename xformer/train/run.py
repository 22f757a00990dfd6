"""A run folder from a recipe, and a model back from a run folder.

    RUN_DIR/config.yaml        the resolved experiment (data-implied model args filled in)
    RUN_DIR/metrics.jsonl      one line per log / eval step
    RUN_DIR/metrics.json       final flat metrics: val_loss, test_loss, test_<metric>, train_seconds (the time
                               spent training over every session, resumed ones included), ...
    RUN_DIR/learning_curve.png
    RUN_DIR/data_split.json    the split's identity, which evaluate and --resume check (data_identity.py)
    RUN_DIR/checkpoints/       see checkpoint.py

config.yaml plus the best (else latest) checkpoint are all ``evaluate_run`` needs.
A fresh run with ``init_from`` starts from pre-trained weights: xformer/train/init_from.py."""
from __future__ import annotations

import copy
import dataclasses
import shutil
import tempfile
from pathlib import Path

import torch
import yaml

from ..config import ConfigError, from_file, load_yaml
from ..errors import UserError
from ..data.registry import DataBundle, build_data
from ..data.vocab import META_FILE, without_learning_args
from ..folders import OutputFolder, check_run_outside_data, inside_run_note, is_hf_folder, write_atomically
from ..interop.hf_source import keep_hf_source
from ..interop.pretrained import check_data_fits, is_pretrained_source, load_source, parse_source
from ..models import Model, ModelConfig, build_model
from ..data.series_args import check_window_args
from .checkpoint import (POINTER, checkpoint_dir, kept_steps, load_weights, read_eval_weights, read_pointer,
                         read_state)
from .config import ExperimentConfig, apply_overrides, check_fixed_by_data, recipe_dict, with_implied_args
from .distill import attach_teacher, check_resumed_teacher, record_teacher, recorded_teacher
from .init_from import init_from_pretrained, start_from_source
from .interrupt import stop_at_once
from .distributed import close_world, init_world, load_full_state
from .memory import check_fits
from .metrics import RunLog, flat
from .rng import deterministic_algorithms, seed_everything
from .resume import (check_data_there, check_resume, check_run_folder, moved_data_paths, planned_steps,
                     run_data_args, as_trained)
from .run_checks import (check_even_mixup_batch, check_fresh_run, check_repeats_augmented, check_smoothed_once,
                         check_teacher_vocabulary, check_trains)
from .data_identity import changed_args, check_run_data, record_split, split_record
from .same_data import (as_other_data, check_same_split, check_same_task, dataset_defaults, same_source,
                        saved_by_data, scale_as_the_run)
from .trainer import Trainer
from .wandb_log import WandbRun, check_wandb


def build_resolved(config: ExperimentConfig, device: torch.device | None = None
                   ) -> tuple[ExperimentConfig, Model, DataBundle]:
    """Seeded (so that ranks agree): the data, the experiment resolved with the model arguments the data
    implies (a new config; ``config`` is not changed), and its model. A model too large to train in
    ``device``'s memory (default: the CPU's) is refused before it is allocated."""
    seed_everything(config.train.seed)
    data = build_data(config.data.name, config.data.args)
    resolved = dataclasses.replace(config, model=with_implied_args(config.model, data.model_args))
    check_fits(resolved.model, device or torch.device("cpu"))
    return resolved, build_model(resolved.model), data


def check_built(recipe_model: ModelConfig, resolved: ExperimentConfig, data: DataBundle, source=None) -> None:
    """After ``build_resolved``: the recipe's own model arguments (``recipe_model``, before the data filled it in)
    against what the data fixes (classes, a series' horizon, input_len, channels) and, for ``source`` (init_from's
    ``Pretrained``), what its checkpoint reads; as ``xformer train`` and ``xformer evaluate RECIPE`` start a model."""
    if source is not None:
        check_data_fits(source, resolved.model, data.model_args)
    check_fixed_by_data(recipe_model, data.model_args)
    check_window_args(recipe_model, data.model_args, resolved.data.name)


def build(config: ExperimentConfig, device: torch.device | None = None) -> tuple[Model, DataBundle]:
    """The model and data of ``config`` (see ``build_resolved``)."""
    _, model, data = build_resolved(config, device)
    return model, data


def train_run(config: ExperimentConfig, run_dir: str | Path, resume: bool = False, progress=None,
              overwrite: bool = False) -> dict[str, float]:
    """Train (or continue) the run in ``run_dir``; return the final metrics written to metrics.json.
    ``progress``: a ``Progress`` of a larger job to advance, or a quiet one (see ``Trainer.fit``).

    A fresh run refuses a folder that holds files unless ``overwrite`` (xformer/folders.py: the old run
    is moved aside and deleted once the new one has saved its first checkpoint, restored if it fails
    before); ``resume`` refuses what it cannot continue exactly (xformer/train/resume.py). Everything is
    checked before the first file is written. ``train.deterministic`` holds for the run only: the process's own
    settings come back when it ends (``deterministic_algorithms``)."""
    with deterministic_algorithms(config.train.deterministic):
        return _train_run(config, Path(run_dir), resume, progress, overwrite)


def _train_run(config: ExperimentConfig, run_dir: Path, resume: bool, progress, overwrite: bool) -> dict[str, float]:
    """``train_run`` inside its deterministic mode."""
    # recorded absolute (a resume's too: data at a new place), the data's paths hold from whatever directory
    config = dataclasses.replace(config, data=dataclasses.replace(  # the run is resumed or evaluated
        config.data, args=run_data_args(config.data, resume)))
    if config.data.name == "image_folder" and config.data.args.get("root"):
        check_run_outside_data(run_dir, config.data.args["root"])  # in train/ it would be a class of the next run
    files = config.data.args.get("files")
    for folder in [f for f in ([files] if isinstance(files, str) else files or []) if Path(f).is_dir()]:
        check_run_outside_data(run_dir, folder, "data.args.files")  # its tokenizer/vocab.txt: text of the next run
    if not resume:
        check_fresh_run(config, run_dir)
    check_smoothed_once(config)
    check_wandb(config.train.wandb)
    folder = None if resume else OutputFolder(
        run_dir, overwrite, "run", marker="config.yaml",
        alternative=f"continue it with --resume {run_dir}" if (run_dir / "config.yaml").is_file() else "")
    if resume:
        check_run_folder(run_dir)
        check_data_there(config.data.args, f"xformer train --resume {run_dir}")
    source, vocab_dir, trainer, world, notes = None, None, None, None, []
    try:
        world = init_world(config.train.device)
        folder = folder if world.main else None  # rank 0 alone writes the run folder: no other rank may remove it
        if config.init_from and not resume and is_pretrained_source(config.init_from):
            source, vocab_dir = load_source(config.init_from), tempfile.TemporaryDirectory()
            config = start_from_source(config, source, Path(vocab_dir.name))
        recipe_model = config.model
        config, model, data = build_resolved(config, world.device)
        check_trains(config, data)
        saved = check_resume(run_dir, config) if resume else None  # resolved: as config.yaml holds it
        record = split_record(data)  # what RUN/data_split.json holds, or must still match on a resume
        if resume:  # on data changed since (classes, series rows, split) the run would continue on other examples;
            # data at a new place must be proved the run's own by these records (then config.yaml records the place)
            check_run_data(run_dir, data, config.data.args, "resume", record, moved=moved_data_paths(saved, config))
        check_built(recipe_model, config, data, source)
        if source is not None and source.tokenizer is not None:  # recorded as the run's own copy, which resume and
            config.data.args = without_learning_args(config.data.args, (run_dir / "tokenizer").resolve())  # evaluate
        if not resume:  # a resume continues what was saved (and cannot change train.aug_repeats)
            check_repeats_augmented(config, data)
        if config.init_from and not resume:  # a resumed run continues from its own checkpoint instead
            summary = init_from_pretrained(model, config, data, source)
            if source is not None:
                summary += f"; architecture{', tokenizer' if source.tokenizer is not None else ''} from the checkpoint"
                if source.normalisation is not None and config.data.args.get("mean") == source.normalisation["mean"]:
                    summary += f"; images normalised as it was trained (mean {source.normalisation['mean']}, std " \
                               f"{source.normalisation['std']})"
            if world.main:
                print(summary, flush=True)
            notes.append(summary)  # train.log's too
        teacher = None
        if config.distill.teacher is not None:  # the teacher run's term joins the student's loss (train/distill.py)
            if resume:  # the same teacher weights as when the run started (RUN/teacher.json), or no exact resume
                check_resumed_teacher(run_dir, config.distill.teacher)
            teacher = attach_teacher(model, config, world.device, load_run_model, class_names(data))
            check_teacher_vocabulary(config, data)
        trainer = Trainer(model, data, config.train, run_dir, world, recipe_dict(config))
        trainer.replacing = folder is not None and folder.replacing
        check_even_mixup_batch(trainer)
        if resume:
            trainer.resume(planned_steps(saved, trainer.steps_per_epoch))
            if trainer.total_steps < trainer.step:
                raise ConfigError(f"the new budget of {trainer.total_steps} steps is below the {trainer.step} "
                                  "steps the run has done; give train.steps (or train.epochs) beyond them")
        trainer.check_early_stopping_metric()
        # after the last step (final evaluation, report) a signal stops at once, with the hint a resume finishes
        with stop_at_once(trainer.stopped_message, world.size == 1 and config.train.num_workers == 0):
            return _train_and_report(trainer, config, data, run_dir, folder, source, resume, teacher, progress, world,
                                     record, notes)
    finally:
        if world is not None:
            close_world(world)
        if vocab_dir is not None:
            vocab_dir.cleanup()
        for claim in (folder, trainer and trainer.folder_lock):  # the folder is free for the next command at once,
            if claim is not None:  # not only when these objects are garbage (a notebook may keep them)
                claim.release()


def _train_and_report(trainer: Trainer, config: ExperimentConfig, data: DataBundle, run_dir: Path,
                      folder: OutputFolder | None, source, resume: bool, teacher, progress, world,
                      record: dict, notes: list[str]) -> dict[str, float]:
    """``train_run``'s second half, once everything is checked: write the run's files, train, then the final
    metrics and the data's report. A resume keeps the files the data wrote at the run's start (checked equal,
    ``check_run_data``) and only adds those the run lacks; ``record`` (``split_record``) is written by a fresh run;
    ``notes`` (init_from's summary) go to train.log below the session's start."""
    log = None
    try:
        try:
            if world.main:
                if folder is not None:
                    folder.replace()
                    trainer.after_save = folder.started
                write_atomically(run_dir / "config.yaml", yaml.safe_dump(recipe_dict(config), sort_keys=False))
                if data.save is not None:
                    _save_data(data, run_dir, resume)
                if not resume:
                    record_split(run_dir, record)
                if source is not None and source.tokenizer is not None:  # its own names, for export back
                    keep_hf_source(parse_source(source.source)[1], run_dir / "tokenizer")
                if teacher is not None and (not resume or recorded_teacher(run_dir) is not None):
                    record_teacher(run_dir, config.distill.teacher, teacher.identity)  # what a resume checks
                wandb = WandbRun(config.train.wandb, run_dir, recipe_dict(config), resume) \
                    if config.train.wandb.project is not None else None
                log = RunLog(run_dir, trainer.step if resume else None, trainer.total_steps, wandb)
                for note in notes:
                    log.say(note)
            trainer.fit(log, progress)
        except BaseException as error:
            if log is not None:
                log.stopped(error)
                log.close()
            if folder is not None:
                folder.failed()  # nothing saved yet: the old run (with --overwrite) comes back
            raise
        final = _final_metrics(trainer, run_dir)
        final.update(train_seconds=round(trainer.train_seconds, 2), steps=trainer.step, best_step=trainer.best_step)
        from .report import write_report  # the data's report (e.g. confusion matrix), best weights, rank 0
        write_report(trainer, config.model, run_dir)
    except (ConfigError, UserError) as error:  # e.g. an unreadable image, met mid-run or at the test split
        error.args = (f"{error}{after_failure(run_dir, folder)}",)
        if log is not None:  # met after the last step (final metrics, report): the run's checkpoints are kept
            log.stopped(error)
        raise
    except BaseException as error:
        if log is not None:
            log.stopped(error)
        raise
    if log is not None:
        log.finish(final)
    return final


def _save_data(data: DataBundle, run_dir: Path, resume: bool) -> None:
    """``data.save`` into the run folder; on a resume only what the run lacks (an older run: e.g. preprocess.json),
    never replacing what it holds (classes.json, series_scaler.json, its tokenizer/)."""
    if not resume:
        data.save(run_dir)
        return
    with tempfile.TemporaryDirectory() as folder:
        data.save(Path(folder))
        for item in Path(folder).iterdir():
            if not (run_dir / item.name).exists():
                shutil.move(str(item), str(run_dir / item.name))


def after_failure(run_dir: Path, folder: OutputFolder | None) -> str:
    """What a run that failed mid-way left behind and how to go on, as the end of its error line: a
    replacement (``--overwrite``) rolled back before its first checkpoint left the old run as it was (resuming
    would continue that one), a fresh run nothing (its command simply runs again); a run with checkpoints of its
    own is finished by a resume."""
    if folder is not None and not folder.safe:  # OutputFolder.failed has put back what was there before
        return (f"; nothing of the new run was kept and the old run in {run_dir} is as it was: after the fix, "
                "run the same command again (with --overwrite)") if folder.replacing else ""
    if (run_dir / "checkpoints" / POINTER).is_file():  # the same command again would be refused: say how
        return f"; the run's checkpoints are kept: after the fix, finish it with xformer train --resume {run_dir}"
    return ""


def class_names(data: DataBundle) -> list[str] | None:
    """The class names the data writes to a run folder's classes.json (None when it writes none)."""
    return saved_by_data(data, ("classes.json",)).get("classes.json", {}).get("class_names")


def _final_metrics(trainer: Trainer, run_dir: Path) -> dict[str, float]:
    """Val and test metrics of the best checkpoint (the latest one when no metric was tracked), over every example
    of each split (train.eval_batches shortens evaluations during training only). Afterwards trainer.model holds
    the weights evaluated: their moving average with train.ema. When the best step is the last one, the model
    holds them already, and its validation metrics, measured then over the whole split, are reused."""
    whole, trainer.cfg = trainer.cfg.eval_batches is None, dataclasses.replace(trainer.cfg, eval_batches=None)
    if trainer.best_val is not None and trainer.best_step == trainer.step:
        metrics = dict(trainer.best_val) if whole else flat("val", trainer.evaluate("val"))
        if trainer.ema is not None:  # what evaluate() read: the report (write_report) must read it too
            load_weights(trainer.model, trainer.ema.module.state_dict())
    else:
        weights = read_eval_weights(checkpoint_dir(run_dir / "checkpoints", "best"))
        load_full_state(trainer.model, None, weights, None, trainer.sharded, load_weights)
        if trainer.ema is not None:  # evaluate() reads the average
            load_weights(trainer.ema.module, weights)
        metrics = flat("val", trainer.evaluate("val")) if trainer.data.val is not None else {}
    if trainer.data.test is not None:
        metrics.update(flat("test", trainer.evaluate("test")))
    return metrics


def run_checkpoint(run_dir: str | Path, checkpoint: str = "best") -> Path:
    """The checkpoint folder of a run: ``best`` (the one its metrics describe; the latest when no metric
    was tracked), ``last`` / ``latest``, or ``step_N`` (any of the kept ones: ``step_40`` or
    ``step_00000040``). A step that is not kept is refused in one line listing the ones that are."""
    root = Path(run_dir) / "checkpoints"
    if checkpoint in ("best", "last", "latest"):
        return checkpoint_dir(root, "latest" if checkpoint == "last" else checkpoint)
    read_pointer(root)  # a run that has no checkpoint at all: the usual line
    kept = sorted(p.name for p in root.glob("step_*") if p.is_dir())
    step = checkpoint[len("step_"):] if checkpoint.startswith("step_") else ""
    if step.isdigit() and f"step_{int(step):08d}" in kept:
        return root / f"step_{int(step):08d}"
    shown = ", ".join(kept_steps(root)) or "none"
    raise ConfigError(f"--checkpoint {checkpoint}: {run_dir} has no such checkpoint; choose best, last or one "
                      f"of the kept steps: {shown}")


def load_run_model(run_dir: str | Path, checkpoint: str = "best") -> tuple[ExperimentConfig, torch.nn.Module]:
    """The run's config and model in eval mode, with the weights its metrics describe (best, else latest
    checkpoint; the moving average with train.ema) or those of ``checkpoint`` (see ``run_checkpoint``),
    without rebuilding its data: config.yaml already holds the data-implied model arguments, so neither
    the data files nor a vocabulary training are needed. A Hugging Face folder (config.json, GPT-2 or BERT)
    gives its own model and head (``xformer.interop.pretrained.load_pretrained``)."""
    run_dir = Path(run_dir)
    if is_hf_folder(run_dir):
        from ..interop.pretrained import load_pretrained  # a Hugging Face folder: its weights, its own head

        model, _ = load_pretrained(run_dir)
        return ExperimentConfig(model=model.config), model
    if not (run_dir / "config.yaml").is_file():
        problem = f"{run_dir} does not exist" if not run_dir.exists() else \
            f"{run_dir} is not a run folder (no config.yaml{inside_run_note(run_dir)}) nor a Hugging Face folder " \
            "(no config.json)"
        raise ConfigError(f"{problem}; give the --out folder of xformer train or a save_pretrained folder")
    config = from_file(ExperimentConfig, load_yaml(run_dir / "config.yaml"), run_dir / "config.yaml")
    model = build_model(config.model)
    load_weights(model, read_eval_weights(run_checkpoint(run_dir, checkpoint)))
    return config, model.eval()


def load_run(run_dir: str | Path, checkpoint: str = "best", data_overrides: list[str] = ()
             ) -> tuple[ExperimentConfig, Model, DataBundle]:
    """Rebuild the run's model from config.yaml and load its best (else latest) weights, or those of
    ``checkpoint`` (best, last, step_N): the moving average of the weights when the run used train.ema.

    The data reads the run's own RUN_DIR/tokenizer; ``init_from`` is not applied (the checkpoint wins).
    ``data_overrides`` (``data.args.KEY=VALUE``) point the run's data set at other data, e.g. another image
    folder; it must give the model what the run's data gave it (``check_same_task``). The run's own data must be
    what it was trained on (``check_run_data``: classes, series rows, split), and config.yaml must not split it
    otherwise than the checkpoint's state.json records (``check_same_split``).
    """
    run_dir = Path(run_dir)
    recipe = load_yaml(run_dir / "config.yaml")
    for item in data_overrides:
        if not item.startswith("data.args.") or "=" not in item:
            raise ConfigError(f"'{item}': evaluate takes data.args.KEY=VALUE only (the model and its training are "
                              f"the run's), e.g. data.args.root=other_images")
    run_args = dict((recipe.get("data") or {}).get("args") or {})
    config = from_file(ExperimentConfig, recipe, run_dir / "config.yaml",
                       apply_overrides(copy.deepcopy(recipe), list(data_overrides)))
    path = run_checkpoint(run_dir, checkpoint)  # a step that is not kept is refused before the data is built
    trained = (read_state(path).get("config") or {}).get("data") or {}
    if trained.get("name") == config.data.name:  # config.yaml edited since the checkpoint: the split must not move
        check_same_split(run_dir, config.data.name, trained.get("args") or {}, run_args, edited=True)
    if data_overrides:  # before the data is built: a split holding training examples is refused at once
        check_same_split(run_dir, config.data.name, run_args, config.data.args)
    own_data = same_source(config.data.name, run_args, config.data.args)
    if own_data:
        check_data_there(config.data.args, f"xformer evaluate {run_dir}")
    else:
        config.data.args = as_other_data(run_dir, config.data.name, run_args, config.data.args, list(data_overrides))
    if config.data.args.get("scaler") == "run":
        scale_as_the_run(run_dir, config)
    overridden = changed_args(run_args, config.data.args)  # what the data, built otherwise, may show differently
    if (run_dir / "tokenizer" / META_FILE).is_file() and "tokenizer" in dataset_defaults(config.data.name):
        # the vocabulary the run saved, not one of other text's characters; the folder stands alone
        config.data.args = without_learning_args(config.data.args, run_dir / "tokenizer")
    model, data = build(as_trained(config, data_overrides))
    if own_data:  # changed since training (classes, series rows, split): refused rather than scored wrongly
        check_run_data(run_dir, data, config.data.args, overridden=overridden)
    if data_overrides:
        check_same_task(run_dir, config, data)
    load_weights(model, read_eval_weights(path))
    return config, model, data


def evaluate_run(run_dir: str | Path, checkpoint: str = "best", data_overrides: list[str] = ()) -> dict[str, float]:
    """Re-evaluate a run on its validation and test splits; the same flat keys as metrics.json.
    ``checkpoint``: best (default: the weights metrics.json describes), last, or step_N. ``data_overrides``
    (``data.args.KEY=VALUE``): the splits of other data instead, as ``load_run`` reads them. Several runs as
    one ensemble: ``xformer.train.ensemble.evaluate_ensemble``."""
    return evaluate_model(*load_run(run_dir, checkpoint, data_overrides))


def evaluate_model(config: ExperimentConfig, model: torch.nn.Module, data: DataBundle, report_dir: Path | None = None
                   ) -> dict[str, float]:
    """The flat val_* / test_* metrics of a loaded model on ``data``'s splits, as training reports them, over
    every example of each split: the run's ``train.eval_batches`` (a training-time shortcut) does not apply.
    ``report_dir``: the data's report (``write_report``) is written there too, as at the end of a run."""
    config.train.ema.enabled = False  # the model already holds the average: evaluate it, not a copy of it
    train = dataclasses.replace(config.train, eval_batches=None)
    if data.val is None and data.test is None:
        return {}
    # the trainer builds a training loader it never draws from here: of batches of one, from a scored split, so
    # neither data to evaluate on only (an image folder of val/ and test/) nor a training split smaller than a
    # batch (other data's) stops the evaluation
    data = dataclasses.replace(data, train=data.val if data.val is not None else data.test)
    train = dataclasses.replace(train, batch_size=1, grad_accum=1,
                                eval_batch_size=train.eval_batch_size or train.batch_size // train.grad_accum)
    metrics = {}
    with deterministic_algorithms(config.train.deterministic):  # as the run evaluated itself, for this call only
        trainer = Trainer(model, data, train, None, init_world(train.device))
        for split in ("val", "test"):
            if getattr(data, split) is not None:
                metrics.update(flat(split, trainer.evaluate(split)))
        if report_dir is not None:
            from .report import write_report

            write_report(trainer, config.model, report_dir)
    return metrics
