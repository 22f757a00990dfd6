"""What a run records: metrics.jsonl (one line per log/eval step), train.log (the same steps as lines to
read, with when each session started and how it ended), TensorBoard if installed, Weights & Biases when the
recipe names a project (wandb_log.py), metrics.json (final, flat keys) and learning_curve.png. Only rank 0
writes.

train.log is the run's history, appended to by every session: a resume adds its lines below those of the
session before, whose steps after the checkpoint it continues from stay there (metrics.jsonl drops them):

    2026-12-04 02:31:07  started: 600 steps (xformer train tasks/reverse.yaml --out runs/r)
    2026-12-04 02:31:09  train step 100/600  loss 2.2939  lr 1.65e-03  5,050 ex/s
    2026-12-04 02:31:12  eval step 100/600  val_loss 2.2149  val_token_accuracy 0.3069
    2026-12-04 02:31:15  stopped: SIGINT: stopped after step 143 of 600, kept as ...; continue with: ...
    2026-12-04 02:40:00  resumed at step 143 of 600 (xformer train --resume runs/r)
    2026-12-04 02:49:51  finished: val_loss 0.1180  ...  test_loss 0.1234  ...  train_seconds 241.5000  steps 600 ...
"""
from __future__ import annotations

import json
import math
import shlex
import sys
import time
from pathlib import Path

from ..config import ConfigError
from ..folders import write_atomically
from .progress import eval_line, numbers, train_line

TEXT_LOG = "train.log"


def flat(split: str, metrics: dict[str, float]) -> dict[str, float]:
    """{"loss": 1.2, "accuracy": 0.9} -> {"val_loss": 1.2, "val_accuracy": 0.9}"""
    return {f"{split}_{key}": value for key, value in metrics.items()}


class RunLog:
    """The records of one training session of the run in ``run_dir``, of ``total_steps`` steps; a resume
    continues from ``resume_step``."""

    def __init__(self, run_dir: Path, resume_step: int | None = None, total_steps: int | None = None, wandb=None):
        self.dir, self.wandb = Path(run_dir), wandb  # wandb: a WandbRun (wandb_log.py) getting the same records
        self.path = self.dir / "metrics.jsonl"
        self.text = self.dir / TEXT_LOG
        self.total, self.ended = total_steps, False
        if resume_step is not None and self.path.is_file():  # forget what happened after the checkpoint
            kept = [line for line, row in metric_rows(self.path) if row["step"] <= resume_step]
            write_atomically(self.path, "".join(line + "\n" for line in kept))
        elif resume_step is None:
            self.path.write_text("", encoding="utf-8")
            self.text.write_text("", encoding="utf-8")
        self.tensorboard = _summary_writer(self.dir / "tensorboard")
        of = f" of {total_steps}" if total_steps is not None else ""
        self.say((f"started: {total_steps} steps" if resume_step is None else f"resumed at step {resume_step}{of}")
                 + _command())

    def say(self, line: str) -> None:
        """``line`` at the end of train.log, after the time it was written."""
        with open(self.text, "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {line}\n")

    def write(self, step: int, values: dict[str, float], left: float | None = None) -> None:
        """A log step's values (``train_loss``, ``lr``, ``examples_per_second``; ``left``: the seconds the run has
        left, said in train.log only) or an evaluation's."""
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        total = self.total if self.total is not None else "?"
        self.say(train_line(step, total, values, left) if "train_loss" in values else eval_line(step, total, values))
        if self.tensorboard is not None:
            for key, value in values.items():
                self.tensorboard.add_scalar(key.replace("_", "/", 1), value, step)
        if self.wandb is not None:
            self.wandb.log(step, values)

    def stopped(self, error: BaseException) -> None:
        """The session ended by ``error`` (a signal, a diverged loss, an unreadable file...): its message, once."""
        if not self.ended:
            self.ended = True
            self.say(f"stopped: {str(error).strip() or type(error).__name__}")
            if self.wandb is not None:
                self.wandb.finish(failed=True)
                self.wandb = None

    def finish(self, final: dict[str, float]) -> None:
        write_atomically(self.dir / "metrics.json", json.dumps(final, indent=1) + "\n")
        self.ended = True
        self.say(f"finished: {numbers(final)}")
        if self.wandb is not None:
            self.wandb.finish(final)
            self.wandb = None
        self.close()
        plot_learning_curve(self.path, self.dir / "learning_curve.png")

    def close(self) -> None:
        """Stop TensorBoard's writer thread: also before a failed fresh run's folder is removed, which it could
        otherwise write into while the folder is being deleted."""
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb is not None:  # ended without finish or stopped (e.g. a resume's own error before them)
            self.wandb.finish(failed=True)
            self.wandb = None


def early_stopping_value(metric: str, metrics: dict[str, float]) -> float:
    """``metrics[metric]``: the value of train.early_stopping.metric in an evaluation's flat metrics; one line
    naming those measured when it is not among them."""
    if metric not in metrics:
        raise ConfigError(f"train.early_stopping.metric '{metric}' is not measured; choose one of {', '.join(metrics)}")
    return metrics[metric]


def _command() -> str:
    """`` (the command line)`` when the session was started by the ``xformer`` command, else nothing (a
    notebook's argv says nothing of the run)."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    if program not in ("xformer", "__main__.py"):
        return ""
    return f" ({shlex.join(['xformer', *sys.argv[1:]])})"


def metric_rows(path: Path) -> list[tuple[str, dict]]:
    """(line, parsed row) of a metrics.jsonl. A torn last line (a crash mid-write) is dropped; a bad line
    before it was not written by a crash, and is refused."""
    lines = [line for line in path.read_bytes().decode(errors="replace").splitlines() if line.strip()]
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("step"), int):
                raise ValueError
        except ValueError:
            if number == len(lines):
                break
            raise ConfigError(f"{path} line {number} is not a metrics record ({line[:40]!r}); "
                              "delete that line and resume again") from None
        rows.append((line, row))
    return rows


def _summary_writer(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(path))


def plot_learning_curve(jsonl: Path, png: Path) -> None:
    """Training and validation loss against the optimizer step (log scale when positive)."""
    from matplotlib.figure import Figure  # not pyplot: the caller's backend and open figures stay as they are

    rows = [row for _, row in metric_rows(Path(jsonl))]
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for key in ("train_loss", "val_loss"):
        points = [(r["step"], r[key]) for r in rows if key in r and math.isfinite(r[key])]
        if points:
            ax.plot(*zip(*points), label=key, marker="o" if key == "val_loss" else None)
    values = [r[k] for r in rows for k in ("train_loss", "val_loss") if k in r and math.isfinite(r[k])]
    if values and min(values) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if ax.lines:
        ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
