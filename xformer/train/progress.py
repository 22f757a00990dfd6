"""Training progress that suits where it goes: a bar on a terminal, plain lines in a log file.

    bar    stderr is a terminal: a tqdm bar with loss, lr and examples/s; each evaluation is printed
           above it with tqdm.write, so the bar stays whole
    lines  stderr is a file or a pipe: one line per log step and one per evaluation (the lines the run's
           own train.log holds in every mode, xformer/train/metrics.py), a log step's with the run's time left
           (the bar's "remaining": the steps left at the session's pace so far, evaluations included),
               train step 200/600  loss 0.4521  lr 2.98e-03  1,234 ex/s  eta 4m05s
               eval step 200/600  val_loss 0.3120  val_token_accuracy 0.9821
           (a bar redrawn in a file is kilobytes of carriage returns on a handful of lines)
    quiet  --quiet, or TQDM_DISABLE set to a true value: nothing. Errors are printed by the command
           line itself (xformer/cli.py), so they stay.

A job that trains several models (xformer compare) opens one Progress for all of them, hands it to
each training run (``train_run`` -> ``Trainer.fit``) and names the model being trained with ``start``.
"""
from __future__ import annotations

import math
import os
import sys

from tqdm import tqdm


def disabled_by_environment() -> bool:
    """TQDM_DISABLE, the switch tqdm users already know, set to anything but empty, 0 or false."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false")


def choose_mode(quiet: bool = False, stream=None) -> str:
    """"quiet" when asked (``quiet`` or TQDM_DISABLE), "bar" when ``stream`` (default stderr) is a
    terminal, else "lines"."""
    if quiet or disabled_by_environment():
        return "quiet"
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return "bar" if isatty is not None and isatty() else "lines"


def readable(value: float) -> str:
    """A metric rounded for reading: 4 decimals, or 3 significant digits in scientific notation when
    it is very small or very large (so 1e-5 does not read as 0.0000)."""
    if isinstance(value, int):
        return f"{value:,}"
    if value == 0 or (math.isfinite(value) and 1e-3 <= abs(value) < 1e5):
        return f"{value:.4f}"
    return f"{value:.2e}"


def numbers(values: dict) -> str:
    """``key value`` pairs of the numbers in ``values``, rounded for reading."""
    return "  ".join(f"{key} {readable(value)}" for key, value in values.items()
                     if isinstance(value, (int, float)) and not isinstance(value, bool))


def train_line(step: int, total: int, values: dict[str, float], left: float | None = None) -> str:
    """``train step 200/600  loss 0.4521  lr 2.98e-03  1,234 ex/s  eta 4m05s`` (``left``: seconds, the eta; none
    when it is None or no step is left)."""
    loss, lr, speed = values["train_loss"], values["lr"], values["examples_per_second"]
    eta = f"  eta {duration(left)}" if left is not None and step < total else ""
    return f"train step {step}/{total}  loss {loss:.4f}  lr {lr:.2e}  {speed:,.0f} ex/s{eta}"


def duration(seconds: float) -> str:
    """``45s``, ``4m05s``, ``2h07m``: a time left, to the second under an hour and to the minute above."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def eval_line(step: int, total: int, metrics: dict[str, float]) -> str:
    """``eval step 200/600  val_loss 0.3120  val_token_accuracy 0.9821``"""
    return f"eval step {step}/{total}  {numbers(metrics)}"


class Progress:
    """Steps done out of ``total``, with what training reports on the way (see the module docstring).

    ``label`` heads the bar ("train", "compare"); ``name`` (set by ``start``) heads every line, so that
    the lines of several models tell them apart. ``shown=False`` (a process other than rank 0) or
    ``quiet`` shows nothing.
    """

    def __init__(self, total: int = 0, label: str = "train", initial: int = 0, quiet: bool = False,
                 shown: bool = True):
        self.mode = choose_mode(quiet) if shown else "quiet"
        self.label, self.name, self.n = label, None, initial
        # disable=False: the mode already read TQDM_DISABLE, which tqdm would also take "0" as true
        self.bar = (tqdm(total=total, initial=initial, desc=label, unit="step", dynamic_ncols=True, disable=False)
                    if self.mode == "bar" else None)

    def start(self, name: str) -> None:
        """The steps that follow are those of model ``name``."""
        self.name = name
        if self.bar is not None:
            self.bar.set_description(f"{self.label} {name}")

    def update(self, steps: int = 1) -> None:
        self.n += steps
        if self.bar is not None:
            self.bar.update(steps)

    def log(self, step: int, total: int, values: dict[str, float], left: float | None = None) -> None:
        """A log step of the Trainer: ``train_loss``, ``lr``, ``examples_per_second``; ``left``: the seconds the
        run has left, said by the lines (a bar says the time left of all its steps)."""
        if self.bar is not None:
            loss, lr, speed = values["train_loss"], values["lr"], values["examples_per_second"]
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", ex_s=f"{speed:,.0f}")
        elif self.mode == "lines":
            self._print(train_line(step, total, values, left))

    def eval(self, step: int, total: int, metrics: dict[str, float]) -> None:
        """An evaluation: the flat validation metrics (``val_loss``, ``val_<metric>``)."""
        self._print(eval_line(step, total, metrics))

    def _print(self, line: str) -> None:
        if self.mode == "quiet":
            return
        if self.name:
            line = f"{self.name}  {line}"
        if self.bar is not None:
            tqdm.write(line, file=sys.stderr)  # clears the bar, prints the line, redraws the bar below it
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["Progress", "choose_mode", "disabled_by_environment", "readable", "numbers", "train_line", "eval_line",
           "duration"]
