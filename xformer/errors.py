"""The two kinds of mistake a user can fix; ``xformer`` ends either in one line with exit status 2.

They live here, below everything else, so that any module can raise them without importing the
configuration machinery or the CLI. ``xformer.config.ConfigError`` and ``xformer.cli.UserError``
are the same classes, re-exported where users have always imported them.
"""
from __future__ import annotations


class ConfigError(ValueError):
    """A user error in a config: the message is one line naming the key and the fix."""


class UserError(Exception):
    """A mistake the user can fix (missing file, wrong column, wrong shape): one line, exit status 2."""


def a_or_an(word) -> str:
    """``word`` after its indefinite article, for the messages of these errors: "a run", "an export",
    "an int"."""
    return f"{'an' if str(word)[:1].lower() in 'aeiou' else 'a'} {word}"


def qualified_type(value) -> str:
    """``value``'s type as a user knows it from the top of its package: "numpy.ndarray", "pandas.DataFrame", "int"."""
    package = type(value).__module__.split(".")[0]
    return type(value).__name__ if package == "builtins" else f"{package}.{type(value).__name__}"


__all__ = ["ConfigError", "UserError", "a_or_an", "qualified_type"]
