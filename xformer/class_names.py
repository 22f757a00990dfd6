"""The class names a classification run keeps in its classes.json, read and checked once for every reader (predict,
the exports): index k names the model's logit k."""
from __future__ import annotations

import json
from pathlib import Path

from .config import ConfigError, read_json


def read_class_names(path: str | Path, n_classes: int | None = None) -> list[str]:
    """The class names a run's classes.json lists, {"class_names": ["cat", "dog", ...]}: index k names the
    model's logit k. Anything else (not JSON, another shape, names that are not distinct strings, a count
    other than the model's ``n_classes``) is one ConfigError naming the file, what is wrong and the fix;
    the file is only read."""
    path = Path(path)
    example = '{"class_names": ["cat", "dog", ...]}'
    count = f"{n_classes} names" if n_classes is not None else "one name per class"
    fix = (f"it should read {example} with {count}, in the order of the training data's class folders "
           "(sorted); correct it, or move it away to see class numbers instead")
    value = read_json(path, fix)
    if not isinstance(value, dict) or "class_names" not in value:
        got = f"keys {sorted(value)}" if isinstance(value, dict) else f"a JSON {type(value).__name__}"
        raise ConfigError(f"{path} has no \"class_names\" list (it holds {got}); {fix}")
    names = value["class_names"]
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ConfigError(f"{path}: \"class_names\" must be a list of strings, got {json.dumps(names)[:80]}; {fix}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"{path} names {', '.join(map(repr, repeated))} more than once; {fix}")
    if n_classes is not None and len(names) != n_classes:
        raise ConfigError(f"{path} lists {len(names)} class names but the model predicts {n_classes} classes; {fix}")
    return names


__all__ = ["read_class_names"]
