"""What a tokenizer hands on: ``Tokens`` (the core's input) and ``TokenState`` (what the head reads).

The core receives only ``Tokens.x`` and the masks (``xformer/models.py`` runs it); the head receives
the whole ``Tokens``, so that it can pool past prefix tokens, regroup channels or undo RevIN without
knowing which tokenizer made them.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

from torch import Tensor


@dataclass(eq=False)
class TokenState(Mapping):
    """Typed facts about a tokenizer's tokens; every field is optional (None = does not apply).

    prefix_tokens: how many leading tokens are not content ([CLS] + registers); pooling skips them.
    class_token: whether token 0 is a [CLS] token (``pool=cls`` reads it).
    grid: (rows, cols) of image patches, raster order after the prefix (attention maps).
    n_tokens: tokens per sequence, when fixed (a forecasting head's input width is n_tokens * d).
    n_channels, channel_independent: series channels, and whether each is its own sequence
        ((B, L, C) -> (B*C, N, d), PatchTST), so that a head regroups the C sequences of an example.
    revin_loc, revin_scale: RevIN statistics (B, 1, C) of the window: mu (the mean, or the last value
        with ``subtract_last``) and sigma = sqrt(var + eps).
    denormalize: maps a (B, H, C) output back to the data's scale (RevIN undone with these statistics).

    Read it as attributes; it is also a read-only mapping of the fields that are set
    (``state["grid"]``, ``state.get("prefix_tokens", 0)``, ``state == {"grid": (4, 6), ...}``).
    """

    prefix_tokens: int | None = None
    class_token: bool | None = None
    grid: tuple[int, int] | None = None
    n_tokens: int | None = None
    n_channels: int | None = None
    channel_independent: bool | None = None
    revin_loc: Tensor | None = None
    revin_scale: Tensor | None = None
    denormalize: Callable[[Tensor], Tensor] | None = None

    def __getitem__(self, key: str) -> Any:
        value = getattr(self, key, None) if key in _FIELDS else None
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return (name for name in _FIELDS if getattr(self, name) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


_FIELDS = tuple(f.name for f in fields(TokenState))


def token_state(tokenizer: Any) -> TokenState:
    """The static ``TokenState`` a tokenizer declares (``tokenizer.token_state``), what a head's factory
    sizes itself from; an empty one for a tokenizer that declares none."""
    state = getattr(tokenizer, "token_state", None)
    return state if isinstance(state, TokenState) else TokenState()


@dataclass
class Tokens:
    """Token embeddings (B, N, d) with what the core and the head need besides.

    padding_mask: (B, N) bool, True = real token; None when every token is real.
    source: the encoder's tokens, for encoder-decoder models.
    state: a :class:`TokenState` (a dict of its field names is converted; None gives an empty one).
    """

    x: Tensor
    padding_mask: Tensor | None = None
    source: "Tokens | None" = None
    # None rather than field(default_factory=TokenState): torch.compile cannot trace a dataclass's default
    # factory, and each Tokens made without a state broke the compiled graph in two
    state: TokenState = None  # type: ignore[assignment]

    def __post_init__(self):
        if self.state is None:
            self.state = TokenState()
        elif not isinstance(self.state, TokenState):
            self.state = TokenState(**dict(self.state))


__all__ = ["TokenState", "Tokens", "token_state"]
