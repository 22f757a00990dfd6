"""What a run records: metrics.jsonl (one line per log/eval step), TensorBoard if installed,
metrics.json (final, flat keys) and learning_curve.png. Only rank 0 writes."""
from __future__ import annotations

import json
import math
from pathlib import Path

from ..config import ConfigError
from ..folders import write_atomically


def flat(split: str, metrics: dict[str, float]) -> dict[str, float]:
    """{"loss": 1.2, "accuracy": 0.9} -> {"val_loss": 1.2, "val_accuracy": 0.9}"""
    return {f"{split}_{key}": value for key, value in metrics.items()}


class RunLog:
    def __init__(self, run_dir: Path, resume_step: int | None = None):
        self.dir = Path(run_dir)
        self.path = self.dir / "metrics.jsonl"
        if resume_step is not None and self.path.is_file():  # forget what happened after the checkpoint
            kept = [line for line, row in _rows(self.path) if row["step"] <= resume_step]
            write_atomically(self.path, "".join(line + "\n" for line in kept))
        elif resume_step is None:
            self.path.write_text("", encoding="utf-8")
        self.tensorboard = _summary_writer(self.dir / "tensorboard")

    def write(self, step: int, values: dict[str, float]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        if self.tensorboard is not None:
            for key, value in values.items():
                self.tensorboard.add_scalar(key.replace("_", "/", 1), value, step)

    def finish(self, final: dict[str, float]) -> None:
        write_atomically(self.dir / "metrics.json", json.dumps(final, indent=1) + "\n")
        self.close()
        plot_learning_curve(self.path, self.dir / "learning_curve.png")

    def close(self) -> None:
        """Stop TensorBoard's writer thread: also before a failed fresh run's folder is removed, which it could
        otherwise write into while the folder is being deleted."""
        if self.tensorboard is not None:
            self.tensorboard.close()


def _rows(path: Path) -> list[tuple[str, dict]]:
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

    rows = [row for _, row in _rows(Path(jsonl))]
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
