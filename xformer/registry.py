"""Named registries of parts (tokenizers, heads, datasets), with helpful lookup errors."""
from __future__ import annotations

import difflib
from collections.abc import Callable

from .config import ConfigError


class Registry(dict):
    """name -> factory. ``register(name)`` is a decorator; ``lookup(name)`` fails with a one-line hint."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable:
        def wrap(factory):
            if name in self and self[name] is not factory:
                raise ValueError(f"a {self.kind} named {name!r} is already registered")
            self[name] = factory
            return factory
        return wrap

    def lookup(self, name: str) -> Callable:
        if name not in self:
            close = difflib.get_close_matches(name, list(self), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"registered: {', '.join(sorted(self))}"
            raise ConfigError(f"unknown {self.kind} '{name}'; {hint}")
        return self[name]
