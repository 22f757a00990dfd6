"""Named registries of parts (tokenizers, heads, datasets), with helpful lookup errors.

A part registers itself when its module is imported; :func:`import_all_submodules` imports a
package's modules so that every part of it is registered before a lookup.

Every registered factory is called through :func:`call_factory`, so a recipe's ``*.args`` mistakes
(an unknown or missing key, a value out of range) end in the same one-line ConfigError wherever
the part lives; :func:`check_sizes` and :func:`check_fractions` are the range checks factories share.
"""
from __future__ import annotations

import difflib
import inspect
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

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

    def defaults(self, name: str) -> dict[str, Any]:
        """What each argument of the factory ``name`` is when a recipe leaves it out ({} for a name not
        registered): a resume or an ensemble reads a key given at its default as the same setting."""
        if name not in self:
            return {}
        return {key: p.default for key, p in inspect.signature(self[name]).parameters.items()
                if p.default is not inspect.Parameter.empty}


def import_all_submodules(package: str) -> None:
    """Import every module of ``package`` (a dotted name) so that its registrations run."""
    import importlib
    import pkgutil

    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{package}.{info.name}")


# the parts a model is composed of, registered by name where they are defined (xformer/models.py builds them)
TOKENIZERS = Registry("tokenizer")
HEADS = Registry("head")
BASELINES = Registry("baseline")


def register_tokenizer(name: str):
    """``@register_tokenizer("text")`` on a factory ``(core: CoreConfig, ...) -> nn.Module``."""
    return TOKENIZERS.register(name)


def register_head(name: str):
    """``@register_head("causal_lm")`` on a factory ``(core: CoreConfig, tokenizer: nn.Module, ...) -> nn.Module``."""
    return HEADS.register(name)


def register_baseline(name: str):
    """A classic model (xformer.baselines): an ``nn.Module`` with the forward contract of ``models.Model``."""
    return BASELINES.register(name)


def check_factory_args(factory: Callable, args: Mapping[str, Any], kind: str, name: str,
                       fixed: Iterable[str] = ()) -> None:
    """Refuse, in one line, a key of ``args`` that ``factory`` does not take (naming the closest valid
    keys) or a required argument that neither ``args`` nor the caller's ``fixed`` ones supply.

    ``kind`` is how a recipe spells the part ("data", "tokenizer", ...): keys are named ``{kind}.args.KEY``.
    """
    params = inspect.signature(factory).parameters
    fixed = set(fixed)
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        valid = [n for n, p in params.items() if n not in fixed and p.kind is not p.VAR_POSITIONAL]
        for key in args:
            if key not in valid:
                close = difflib.get_close_matches(str(key), valid, n=3, cutoff=0.5)
                hint = f"did you mean {', '.join(close)}?" if close else f"valid: {', '.join(valid)}"
                raise ConfigError(f"unknown {kind}.args key '{key}' for {kind} '{name}'; {hint}")
    for key, p in params.items():
        required = p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        if required and key not in args and key not in fixed:
            raise ConfigError(f"{kind} '{name}' needs {kind}.args.{key}; add it to the recipe")


def call_factory(factory: Callable, args: Mapping[str, Any], kind: str, name: str, **fixed) -> Any:
    """``factory(**fixed, **args)`` after :func:`check_factory_args`; a TypeError or ValueError it raises
    (a wrong value) becomes a one-line ConfigError naming the part. A ConfigError passes unchanged:
    it already names the key."""
    check_factory_args(factory, args, kind, name, fixed)
    try:
        return factory(**fixed, **args)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{kind} '{name}': {first_line(e)}") from None
    except (MemoryError, RuntimeError) as e:  # torch reports a failed allocation as a RuntimeError
        if not isinstance(e, MemoryError) and "alloc" not in str(e):
            raise
        raise ConfigError(f"{kind} '{name}' does not fit in memory ({first_line(e)}); lower its sizes in "
                          f"{kind}.args") from None


def first_line(error: Exception) -> str:
    """An exception's message cut to its first line (the statement; later lines are suggestions or
    context), so that it fits the one-line error rule; its type's name when it has no message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def is_whole_number(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_sizes(prefix: str, minimum: int = 1, **sizes: Any) -> None:
    """Each size or count (a length, a horizon, a number of items) must be a whole number >= ``minimum``;
    a list (e.g. an image size [H, W]) must hold such numbers; None (an optional size left out) passes.

        check_sizes("data.args", input_len=0)   ->  ConfigError("data.args.input_len must be >= 1, got 0")
    """
    for key, value in sizes.items():
        if value is None:
            continue
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if not values or not all(is_whole_number(v) for v in values):
            raise ConfigError(f"{prefix}.{key} must be a whole number >= {minimum}, got {value!r}")
        if any(v < minimum for v in values):
            raise ConfigError(f"{prefix}.{key} must be >= {minimum}, got {value!r}")


def check_fractions(prefix: str, include_one: bool = False, **fractions: Any) -> None:
    """Each fraction or probability must lie in [0, 1) (``include_one``: [0, 1]); None passes."""
    top = "1]" if include_one else "1)"
    for key, value in fractions.items():
        if value is None:
            continue
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and (
            0 <= value <= 1 if include_one else 0 <= value < 1)
        if not ok:
            raise ConfigError(f"{prefix}.{key} must be in [0, {top}, got {value!r}")


def check_vocabulary(prefix: str, vocab_size: Any, pad_id: Any = None) -> None:
    """``vocab_size`` >= 1 and, when given, ``pad_id`` one of its ids (an embedding's padding row)."""
    check_sizes(prefix, vocab_size=vocab_size)
    if pad_id is not None and not (is_whole_number(pad_id) and 0 <= pad_id < vocab_size):
        raise ConfigError(f"{prefix}.pad_id must be an id in [0, {vocab_size}) (the vocabulary), got {pad_id!r}")


def check_min_max(prefix: str, low_key: str, low: Any, high_key: str, high: Any) -> None:
    """Two sizes that bound a range (min_len, max_len): each >= 1, and the upper one not below the lower."""
    check_sizes(prefix, **{low_key: low, high_key: high})
    if high < low:
        raise ConfigError(f"{prefix}.{high_key}={high} is below {prefix}.{low_key}={low}; "
                          f"raise {high_key} or lower {low_key}")
