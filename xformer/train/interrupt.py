"""Ctrl-C (SIGINT) and SIGTERM during training: finish the step, keep a checkpoint, stop.

A signal that interrupted a step (a backward pass, an optimizer update) would leave the weights half
updated, so while ``deferred_stop`` is active the handlers only record the request, and the training
loop checks it between steps: it saves a checkpoint of the finished step and raises
:class:`TrainingInterrupted`, from which ``xformer train --resume RUN`` continues exactly. A second
Ctrl-C stops at once (a plain KeyboardInterrupt), for a step that hangs.

Only in the main thread of a single process without DataLoader workers: a terminal's Ctrl-C reaches
the workers and every DDP rank too, which would stop them at different steps.
"""
from __future__ import annotations

import signal
import threading
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
def deferred_stop(enabled: bool = True):
    """A :class:`StopRequest` set by SIGINT / SIGTERM while the block runs (the previous handlers come back
    after it); with ``enabled`` false, or outside the main thread, one that is never set."""
    request = StopRequest()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield request
        return

    def record(signum, frame):
        if request.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # asked twice: stop now, mid-step
        request.signum = signum

    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, record)
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


__all__ = ["TrainingInterrupted", "StopRequest", "deferred_stop"]
