"""A command line that switches one of the recipe's choices drops the recipe's settings only the old choice read.

    xformer train tasks/wordpiece_gpt.yaml data.args.tokenizer=RUN/tokenizer    # its vocab_size, ... go too
    xformer train tasks/patchtst64_etth1_96.yaml train.schedule=cosine          # its decay_after_epochs, gamma go
    xformer train tasks/char_gpt_shakespeare.yaml train.optimizer=sgd           # its betas go

Left in, they would be refused beside the new choice, which never reads them (``make_vocab``,
``optim.check_read_settings``); a recipe that gives both itself is refused, since nothing says which was meant.
The settings the command line gives itself stay, and are checked.
"""
from __future__ import annotations

from ..data.vocab import LEARNING_ARGS

# the settings only some schedules read, and which ones (optim.build_scheduler)
SCHEDULE_READS = {"min_lr": ("cosine", "linear"), "step_size": ("step",), "gamma": ("step", "epoch_decay"),
                  "decay_after_epochs": ("epoch_decay",)}

# a choice -> {a setting only some of its values read: those values}
SWITCHES = {"data.args.tokenizer": {f"data.args.{key}": ("wordpiece",) for key in LEARNING_ARGS},
            "train.schedule": {f"train.{key}": readers for key, readers in SCHEDULE_READS.items()},
            "train.optimizer": {"train.betas": ("adamw",), "train.momentum": ("sgd",), "train.nesterov": ("sgd",)}}


def _parent(recipe: dict, key: str) -> tuple[dict | None, str]:
    """The mapping of ``recipe`` that holds the dotted ``key``'s last part (None where there is none), and that part."""
    *path, leaf = key.split(".")
    node = recipe
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), leaf


def without_switched_settings(recipe: dict, overrides) -> None:
    """Drop from ``recipe`` (overrides applied) the settings its choices' new values, set by ``overrides``, never
    read, unless ``overrides`` give those settings too."""
    given = {item.partition("=")[0] for item in overrides}
    for choice, settings in SWITCHES.items():
        node, leaf = _parent(recipe, choice)
        if choice not in given or node is None:
            continue
        for setting, readers in settings.items():
            holder, name = _parent(recipe, setting)
            if setting not in given and holder is not None and node.get(leaf) not in readers:
                holder.pop(name, None)


__all__ = ["SCHEDULE_READS", "SWITCHES", "without_switched_settings"]
