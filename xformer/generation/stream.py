"""Streaming: the new text handed on while it is decoded (Hugging Face's ``TextStreamer``, the way llama.cpp
prints), for one sequence decoded greedily or by sampling.

After every token the continuation is decoded again, as stop strings read it (:mod:`.stop`), and what is settled
is handed on: the text before its last word and the whitespace before that word. They wait because a later token
may still change them: WordPiece's "##ing" joins the word, a byte-level BPE token may hold half of a character, and
a clean-up rule may take back the space before the word ("do n't" -> "don't"). When decoding ends the rest follows,
so the pieces joined are the returned text.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .stop import cut_at_stop

_LAST_WORD = re.compile(r"\s+\S*\Z")  # the whitespace before the last word, and the word


class TextStream:
    """Hands ``write`` each settled piece of a sequence's new text. Called as ``generate``'s ``stop_when`` after
    every token, it answers what ``ends`` (the stop strings' check, or None) answers, and no sequence ends.

    ``text_of(new_ids)``: the new text of the ids after the prompt's ``start`` ones (cut at [EOS]);
    ``stops``: the stop strings the returned text is cut after."""

    def __init__(self, write: Callable[[str], None], text_of: Callable[[list[int]], str], start: int,
                 stops: Sequence[str] = (), ends: Callable[[Tensor], Tensor] | None = None):
        self.write, self.text_of, self.start, self.stops, self.ends = write, text_of, start, tuple(stops), ends
        self.written = ""

    def __call__(self, ids: Tensor) -> Tensor:
        """(1, 1, L) sequences -> (1, 1) bool: those that end (``ends``' answer)."""
        ended = self.ends(ids) if self.ends is not None else torch.zeros(ids.shape[:2], dtype=torch.bool,
                                                                         device=ids.device)
        text = cut_at_stop(self.text_of(ids[0, 0, self.start:].tolist()), self.stops)
        last_word = _LAST_WORD.search(text)
        settled = text if bool(ended.all()) else text[:last_word.start()] if last_word else ""
        self._hand_on(settled)
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
