"""A run folder from a recipe, and a model back from a run folder.

    RUN_DIR/config.yaml        the resolved experiment (data-implied model args filled in)
    RUN_DIR/metrics.jsonl      one line per log / eval step
    RUN_DIR/metrics.json       final flat metrics: val_loss, test_loss, test_<metric>, train_seconds, ...
    RUN_DIR/learning_curve.png
    RUN_DIR/checkpoints/       see checkpoint.py

config.yaml plus the best (else latest) checkpoint are all ``evaluate_run`` needs.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..config import ConfigError, from_dict, load_yaml, save_yaml, to_dict
from ..data.registry import DataBundle, build_data
from ..models import Model, build_model
from .checkpoint import checkpoint_dir, load_weights, read_weights
from .config import ExperimentConfig, fill_model_args
from .distributed import close_world, init_world, load_full_state
from .metrics import RunLog, flat
from .trainer import Trainer, seed_everything


def build(config: ExperimentConfig) -> tuple[Model, DataBundle]:
    """The data, then the model with the arguments the data implies (seeded, so ranks agree)."""
    seed_everything(config.train.seed, config.train.deterministic)
    data = build_data(config.data.name, config.data.args)
    fill_model_args(config.model, data.model_args)
    return build_model(config.model), data


def train_run(config: ExperimentConfig, run_dir: str | Path, resume: bool = False) -> dict[str, float]:
    """Train (or continue) the run in ``run_dir``; return the final metrics written to metrics.json."""
    run_dir = Path(run_dir)
    if resume and not (run_dir / "checkpoints").is_dir():
        raise ConfigError(f"cannot resume {run_dir}: it holds no checkpoints/ folder")
    world = init_world(config.train.device)
    try:
        model, data = build(config)
        trainer = Trainer(model, data, config.train, run_dir, world)
        if resume:
            trainer.resume()
        log = None
        if world.main:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_yaml(to_dict(config), run_dir / "config.yaml")
            if data.save is not None:
                data.save(run_dir)
            log = RunLog(run_dir, trainer.step if resume else None)
        start = time.perf_counter()
        trainer.fit(log)
        seconds = time.perf_counter() - start
        final = _final_metrics(trainer, run_dir)
        final.update(train_seconds=round(seconds, 2), steps=trainer.step, best_step=trainer.best_step)
        if log is not None:
            log.finish(final)
        return final
    finally:
        close_world(world)


def _final_metrics(trainer: Trainer, run_dir: Path) -> dict[str, float]:
    """Val and test metrics of the best checkpoint (the latest one when no metric was tracked)."""
    path = checkpoint_dir(run_dir / "checkpoints", "best")
    load_full_state(trainer.model, None, read_weights(path), None, trainer.sharded, load_weights)
    metrics = {}
    for split in ("val", "test"):
        if getattr(trainer.data, split) is not None:
            metrics.update(flat(split, trainer.evaluate(split)))
    return metrics


def load_run(run_dir: str | Path) -> tuple[ExperimentConfig, Model, DataBundle]:
    """Rebuild the run's model from config.yaml and load its best (else latest) weights."""
    run_dir = Path(run_dir)
    config = from_dict(ExperimentConfig, load_yaml(run_dir / "config.yaml"))
    model, data = build(config)
    load_weights(model, read_weights(checkpoint_dir(run_dir / "checkpoints", "best")))
    return config, model, data


def evaluate_run(run_dir: str | Path) -> dict[str, float]:
    """Re-evaluate a run on its validation and test splits; the same flat keys as metrics.json."""
    config, model, data = load_run(run_dir)
    trainer = Trainer(model, data, config.train, None, init_world(config.train.device))
    metrics = {}
    for split in ("val", "test"):
        if getattr(data, split) is not None:
            metrics.update(flat(split, trainer.evaluate(split)))
    return metrics
