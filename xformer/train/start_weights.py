"""The weights a recipe starts from, scored before any training: ``xformer evaluate RECIPE.yaml``.

timm's ``validate.py --pretrained`` and Hugging Face's ``trainer.evaluate()`` before ``train()``: how good is a
pretrained checkpoint (``init_from``: a run folder, ``hf:FOLDER`` or ``timm:FILE#MODEL``) on my data as it is?
The recipe's model is built and loaded exactly as ``xformer train`` starts it (``init_from_pretrained``), then
scored on the data's validation and test splits (``evaluate_model``); nothing is written. A model with any
tensor left fresh (a classifier of other classes, a new head) is refused: its score would be of random weights.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from ..errors import ConfigError
from ..interop.pretrained import is_pretrained_source, load_source
from ..models import check_trained
from .config import ExperimentConfig
from .distributed import close_world, init_world
from .init_from import init_from_pretrained, start_from_source
from .run import build_resolved, check_built, evaluate_model


def evaluate_start(config: ExperimentConfig) -> tuple[dict[str, float], str]:
    """(the flat val_* / test_* metrics of the weights ``config.init_from`` gives the recipe's model on the
    recipe's data, init_from's one-line summary)."""
    if not config.init_from:
        raise ConfigError("the recipe has no init_from: there are no weights to score before training; give "
                          "init_from=hf:FOLDER (or a run folder, timm:FILE#MODEL), or train it and evaluate the run")
    world = init_world(config.train.device)
    try:
        with tempfile.TemporaryDirectory() as vocab_dir:
            source = None
            if is_pretrained_source(config.init_from):
                source = load_source(config.init_from)
                config = start_from_source(config, source, Path(vocab_dir))
            recipe_model = config.model
            config, model, data = build_resolved(config, world.device)
            check_built(recipe_model, config, data, source)
            summary = init_from_pretrained(model, config, data, source)
            check_trained(model, "a score before training", config.init_from)
            return evaluate_model(config, model.eval(), data), summary
    finally:
        close_world(world)


__all__ = ["evaluate_start"]
