"""Stop strings: a sequence ends as soon as the text it has written holds one of them (Hugging Face's
``generate(stop_strings=...)``, OpenAI's ``stop``), whichever tokens the string falls across.

Decoding asks :class:`StopStrings` after every token which sequences now hold a stop string: those end there,
as at [EOS] (beam search scores such a hypothesis as finished), while the others of the batch go on. The text is
then cut right after the stop string that ends first: it is included (as Hugging Face returns it), and what the
last token wrote past it is dropped (Hugging Face keeps that overhang, e.g. "stop" + "per" of a token "pper").
Only the new text is searched, never the prompt (OpenAI's rule).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..errors import ConfigError


def stop_strings(stop: str | Sequence[str] | None) -> tuple[str, ...]:
    """``stop`` as a tuple of non-empty strings (one string is itself; None: none). An empty one, which every text
    holds, would end each sequence before its first token: refused, as is anything but text."""
    strings = () if stop is None else (stop,) if isinstance(stop, str) else tuple(stop)
    for s in strings:
        if not isinstance(s, str):
            raise ConfigError(f"a stop string must be text, not {type(s).__name__} ({s!r}); e.g. stop=['\\n\\n']")
        if not s:
            raise ConfigError("an empty stop string would end every sequence before its first token; give the text "
                              "to stop at, e.g. stop=['\\n\\n'], or leave it out")
    return strings


def cut_at_stop(text: str, strings: Sequence[str]) -> str:
    """``text`` up to and including the stop string that ends first in it (``text`` itself when none occurs)."""
    ends = [text.find(s) + len(s) for s in strings if s in text]
    return text[:min(ends)] if ends else text


class StopStrings:
    """Which sequences hold a stop string: ``text_of(row, new_ids)`` is the text of the new token ids of a
    sequence of batch row ``row`` (the prompt's first ``start`` ids are not new)."""

    def __init__(self, strings: Sequence[str], text_of: Callable[[int, list[int]], str], start: int):
        self.strings, self.text_of, self.start = tuple(strings), text_of, start

    def __call__(self, ids: Tensor) -> Tensor:
        """(B, m) bool of the (B, m, L) sequences (m per batch row: one, or beam search's candidates)."""
        rows = ids[:, :, self.start:].tolist()
        held = [[any(s in self.text_of(b, new) for s in self.strings) for new in row] for b, row in enumerate(rows)]
        return torch.tensor(held, dtype=torch.bool, device=ids.device)


__all__ = ["StopStrings", "stop_strings", "cut_at_stop"]
