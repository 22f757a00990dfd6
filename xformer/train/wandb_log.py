"""Weights & Biases, when a recipe asks for it: ``train.wandb.project`` (nanoGPT's ``wandb_log``, timm's
``--log-wandb``, Hugging Face's ``report_to="wandb"``).

Every record of metrics.jsonl goes to the W&B run at its optimizer step (``wandb.log(values, step=step)``), the
final metrics of metrics.json to its summary; the recipe (config.yaml's content) is its config. The W&B run's
files go into the run folder (``RUN/wandb/``), and its id into ``RUN/wandb.json``, so that ``--resume`` continues
the same W&B run (``resume="allow"``). W&B keeps steps increasing: the steps a resume trains again after its
checkpoint (those after it in the killed session) are not logged a second time. ``mode: offline`` (or
``WANDB_MODE=offline``) writes the run for a later ``wandb sync``. Only rank 0 logs; ``wandb`` is not a
dependency: a recipe naming a project without it installed is refused before anything is written.
"""
from __future__ import annotations

import importlib.util
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..config import read_json
from ..errors import ConfigError, UserError
from ..folders import write_atomically

ID_FILE = "wandb.json"
ID_FIX = ("it holds the id of the run's W&B run, written by xformer train; restore it, or delete it to log "
          "the resumed run as a new W&B run")


@dataclass
class Wandb:
    project: str | None = None  # None: nothing goes to W&B
    entity: str | None = None  # a team; None: the user's default
    name: str | None = None  # None: the run folder's name
    tags: list[str] = field(default_factory=list)
    mode: Literal["online", "offline", None] = None  # None: wandb's own choice (WANDB_MODE, else online)

    def __post_init__(self):
        given = [key for key in ("entity", "name", "mode") if getattr(self, key) is not None] + \
            (["tags"] if self.tags else [])
        if self.project is None and given:
            raise ConfigError(f"train.wandb.{given[0]} does nothing without train.wandb.project; name the W&B "
                              "project (train.wandb.project=NAME), or leave it out")
        if self.project is not None and not str(self.project).strip():
            raise ConfigError("train.wandb.project is empty; name the W&B project, or leave it out")


def check_wandb(config: Wandb) -> None:
    """A project named without the wandb package: one line, before the run folder is made."""
    if config.project is not None and importlib.util.find_spec("wandb") is None:
        raise ConfigError(f"train.wandb.project={config.project} logs to Weights & Biases, whose wandb package is "
                          "not installed; install it with: pip install wandb (or leave train.wandb out)")


class WandbRun:
    """The W&B run of the run in ``run_dir`` (a resumed run's own, by the id in RUN/wandb.json)."""

    def __init__(self, config: Wandb, run_dir: Path, recipe: dict, resumed: bool):
        import wandb

        id_file = Path(run_dir) / ID_FILE
        saved = read_json(id_file, ID_FIX) if resumed and id_file.is_file() else {}
        if not isinstance(saved, dict) or not isinstance(saved.get("id", ""), str):
            raise ConfigError(f'{id_file} does not hold {{"id": ..., "project": ...}}; {ID_FIX}')
        run_id = saved.get("id") if saved.get("project") == config.project else None
        run_id = run_id or uuid.uuid4().hex[:8]
        write_atomically(id_file, json.dumps({"id": run_id, "project": config.project}) + "\n")
        try:
            self.run = wandb.init(project=config.project, entity=config.entity, name=config.name or Path(run_dir).name,
                                  tags=list(config.tags) or None, mode=config.mode, dir=str(run_dir), config=recipe,
                                  id=run_id, resume="allow")
        except Exception as e:  # noqa: BLE001 - not logged in, no network, a project of another entity: one line
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f"Weights & Biases could not start the run ({first}); log in with wandb login, or set "
                            "train.wandb.mode=offline (wandb sync uploads it later), or leave train.wandb "
                            "out") from None
        self.last_step = getattr(self.run, "step", 0) or 0

    def log(self, step: int, values: dict[str, float]) -> None:
        if step >= self.last_step:  # a resume's steps again (see the module docstring) are W&B's already
            self.run.log(dict(values), step=step)
            self.last_step = step

    def finish(self, final: dict[str, float] | None = None, failed: bool = False) -> None:
        if final:
            self.run.summary.update(final)
        self.run.finish(exit_code=1 if failed else 0)


__all__ = ["Wandb", "WandbRun", "check_wandb", "ID_FILE"]
