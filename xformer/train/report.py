"""The data's own report of a finished run (``DataBundle.report``), written into the run folder.

Classification data, for example, writes ``test_classification.json`` (per-class accuracy,
support, confusion matrix, class names) and ``test_confusion_matrix.png``. The report covers
the test split, or the validation split when there is no test split, with the weights the
final metrics were measured with (``train_run`` loads the best checkpoint first). Only
rank 0 writes; under FSDP2 the weights are gathered into an unsharded copy of the model
first (a sharded forward pass is collective), so every rank must call :func:`write_report`.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..models import ModelConfig, build_model
from .checkpoint import load_weights
from .distributed import barrier
from .trainer import Trainer


def report_split(data) -> str | None:
    """The split a report looks at: test, else val, else None."""
    return next((split for split in ("test", "val") if getattr(data, split) is not None), None)


def write_report(trainer: Trainer, model_config: ModelConfig, run_dir: str | Path) -> dict | None:
    """Run ``trainer.data.report`` on rank 0 over the whole report split; None when there is none."""
    data, world = trainer.data, trainer.world
    split = report_split(data)
    if data.report is None or split is None:
        return None
    model = trainer.model
    if trainer.sharded:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        weights = get_model_state_dict(trainer.model, options=StateDictOptions(full_state_dict=True,
                                                                                cpu_offload=True))
        if world.main:
            model = build_model(model_config)
            load_weights(model, weights)
            model.to(world.device)
    result = None
    if world.main:
        loader = DataLoader(getattr(data, split), trainer.cfg.eval_batch_size or trainer.micro, shuffle=False,
                            collate_fn=data.collate, num_workers=trainer.cfg.num_workers)
        with torch.no_grad(), trainer.autocast:
            result = data.report(model, loader, Path(run_dir), split)
    barrier(world)
    return result


__all__ = ["write_report", "report_split"]
