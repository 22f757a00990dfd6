"""Streaming: the new text handed on while it is decoded (Hugging Face's ``TextStreamer``, the way llama.cpp
prints), for one sequence decoded greedily or by sampling.

After every token the continuation is decoded again, as stop strings read it (:mod:`.stop`), and what is settled
is handed on: the text before its last word and the whitespace before that word. They wait because a later token
may still change them: WordPiece's "##ing" joins the word, a byte-level BPE token may hold half of a character, and
a clean-up rule may take back the space before the word ("do n't" -> "don't"). When decoding ends the rest follows,
so the pieces joined are the returned text. The text is read at most every ``INTERVAL`` seconds (smooth to the eye),
so that decoding it again after every token of a small, fast model does not slow the generation down.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .stop import cut_at_stop

INTERVAL = 0.05  # seconds between two readings of the text: 20 a second at the most


def _before_last_word(text: str) -> str:
    """``text`` less its last word and the whitespace before it (read from the end: a long text costs no more)."""
    end = len(text)
    while end and not text[end - 1].isspace():
        end -= 1
    while end and text[end - 1].isspace():
        end -= 1
    return text[:end]


class TextStream:
    """Hands ``write`` each settled piece of a sequence's new text. Called as ``generate``'s ``stop_when`` after
    every token, it answers what ``ends`` (the stop strings' check, or None) answers, and no sequence ends.

    ``text_of(new_ids)``: the new text of the ids after the prompt's ``start`` ones (cut at [EOS]);
    ``stops``: the stop strings the returned text is cut after."""

    def __init__(self, write: Callable[[str], None], text_of: Callable[[list[int]], str], start: int,
                 stops: Sequence[str] = (), ends: Callable[[Tensor], Tensor] | None = None):
        self.write, self.text_of, self.start, self.stops, self.ends = write, text_of, start, tuple(stops), ends
        self.written, self.read_at, self.never = "", -INTERVAL, None

    def __call__(self, ids: Tensor) -> Tensor:
        """(1, 1, L) sequences -> (1, 1) bool: those that end (``ends``' answer)."""
        if self.ends is None and self.never is None:  # made once: this runs after every token
            self.never = torch.zeros(ids.shape[:2], dtype=torch.bool, device=ids.device)
        ended = self.ends(ids) if self.ends is not None else self.never
        done = self.ends is not None and bool(ended.all())
        if done or time.monotonic() - self.read_at >= INTERVAL:
            text = cut_at_stop(self.text_of(ids[0, 0, self.start:].tolist()), self.stops)
            self._hand_on(text if done else _before_last_word(text))
            self.read_at = time.monotonic()
        return ended

    def close(self, text: str) -> None:
        """Hand on the rest of ``text``, the sequence's whole new text once decoding has ended."""
        self._hand_on(text)

    def _hand_on(self, text: str) -> None:
        # a piece already handed on cannot be taken back: text that no longer starts with it waits (close() has the
        # whole text, which starts with it unless the tokenizer rewrote a word it had settled)
        if len(text) > len(self.written) and text.startswith(self.written):
            self.write(text[len(self.written):])
            self.written = text


__all__ = ["TextStream"]
