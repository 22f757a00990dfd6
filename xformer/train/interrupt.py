"""Ctrl-C (SIGINT) and SIGTERM during training: finish the step, keep a checkpoint, stop.

A signal that interrupted a step (a backward pass, an optimizer update) would leave the weights half
updated, so while ``deferred_stop`` is active the handlers only record the request, and the training
loop checks it between steps: it saves a checkpoint of the finished step and raises
:class:`TrainingInterrupted`, from which ``xformer train --resume RUN`` continues exactly. A second
Ctrl-C stops at once, for a step that hangs (a TrainingInterrupted saying which checkpoint a resume
continues from). Once the last step is saved (the final evaluation, the report), ``stop_at_once``
raises TrainingInterrupted at once: nothing there needs finishing, and a resume does it again.

Only in the main thread of a single process without DataLoader workers: a terminal's Ctrl-C reaches
the workers and every DDP rank too, which would stop them at different steps.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped between steps on a signal; ``exit_status`` is the shell's 128 + signal number."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.exit_status = 128 + int(signum)


@dataclass
class StopRequest:
    signum: int | None = None  # the signal that asked to stop, once one has

    @property
    def requested(self) -> bool:
        return self.signum is not None


@contextmanager
def deferred_stop(enabled: bool = True, twice: Callable[[int], str] | None = None):
    """A :class:`StopRequest` set by SIGINT / SIGTERM while the block runs (the previous handlers come back
    after it); with ``enabled`` false, or outside the main thread, one that is never set. A second SIGINT
    raises at once: TrainingInterrupted(``twice(signum)``), a plain KeyboardInterrupt without ``twice``."""
    request = StopRequest()

    def record(signum, frame):
        if request.requested and signum == signal.SIGINT:  # asked twice: stop now, mid-step
            if twice is None:
                raise KeyboardInterrupt
            raise TrainingInterrupted(twice(signum), signum)
        request.signum = signum

    with _handling(record, enabled):
        yield request


@contextmanager
def stop_at_once(message: Callable[[int], str], enabled: bool = True):
    """While the block runs, SIGINT / SIGTERM raise TrainingInterrupted(``message(signum)``) at once (SIGTERM
    would otherwise end the process without a word); with ``enabled`` false, or outside the main thread,
    the handlers stay as they are."""
    def stop(signum, frame):
        raise TrainingInterrupted(message(signum), signum)

    with _handling(stop, enabled):
        yield


@contextmanager
def _handling(handler, enabled: bool):
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old if old is not None else signal.SIG_DFL)


__all__ = ["TrainingInterrupted", "StopRequest", "deferred_stop", "stop_at_once"]
