"""Dataclass configs that round-trip through dicts, YAML and JSON, with one-line errors.

``from_dict(Cls, d)`` builds a (possibly nested) dataclass and rejects unknown
keys and wrong types with a :class:`ConfigError` that names the key and the
closest valid keys, so a typo in a recipe fails at once with a fix to apply.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import ConfigError  # re-exported: `from xformer.config import ConfigError` keeps working

T = TypeVar("T")


def to_dict(config: Any) -> dict:
    """A plain dict (nested dataclasses become dicts, tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _check_type(value: Any, annotation: Any, where: str) -> Any:
    """Return value converted to ``annotation`` (int -> float, list -> tuple), or raise ConfigError."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return _check_type(value, option, where)
            except ConfigError:
                if isinstance(value, dict) and dataclasses.is_dataclass(option):
                    raise  # a mapping meant for the dataclass: its own error (an unknown or missing key) says more
        names = " or ".join(_type_name(a) for a in typing.get_args(annotation))
        raise ConfigError(f"{where}: expected {names}, got {value!r}")
    if annotation is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected null, got {value!r}")
    if origin is typing.Literal:
        if value in typing.get_args(annotation):
            return value
        choices = ", ".join(repr(a) for a in typing.get_args(annotation))
        raise ConfigError(f"{where}: {value!r} is not one of {choices}")
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(annotation, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(annotation)
        item = args[0] if args else Any
        items = [_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {key: yaml_numbers(item) for key, item in value.items()}  # a part's or the data's arguments
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str):
        try:  # YAML 1.1 reads "1e-4" as a string
            return float(value)
        except ValueError:
            pass
    if isinstance(annotation, type):
        if isinstance(value, annotation) and not (annotation is int and isinstance(value, bool)):
            return value
        raise ConfigError(f"{where}: expected {_type_name(annotation)}, got {value!r}")
    return value


# a number in exponent form as YAML 1.2 reads it: "2e-1", "1E5", "1.5e3". PyYAML implements YAML 1.1, whose
# floats need a dot and a signed exponent ("2.0e-1"), and leaves these strings
_EXPONENT_NUMBER = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][-+]?[0-9]+")


def yaml_numbers(value: Any) -> Any:
    """``value`` with each string that is a number in exponent form (``_EXPONENT_NUMBER``) made that float, in
    nested lists and mappings too: the arguments of a model part or a dataset (typed ``Any``) read
    ``data.args.mixup=2e-1`` as the number 0.2, as ``train.lr=2e-1`` (a float field) always has."""
    if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value):
        return float(value)
    if isinstance(value, (list, tuple)):
        return type(value)(yaml_numbers(item) for item in value)
    if isinstance(value, dict):
        return {key: yaml_numbers(item) for key, item in value.items()}
    return value


def _type_name(annotation: Any) -> str:
    """int -> 'int', None -> 'null', Literal['soft', 'hard'] -> "one of 'soft', 'hard'"."""
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    return getattr(annotation, "__name__", str(annotation)).replace("NoneType", "null")


class UnknownKey(ConfigError):
    """A key that ``cls`` does not have, raised where it is met; the outermost ``from_dict`` names where in the
    whole config the key does belong (``train.init_from`` -> ``init_from``; ``data.batch_size`` ->
    ``train.batch_size``), which a close spelling among the neighbours cannot tell."""

    def __init__(self, path: str, key: str, hint: str):
        super().__init__(f"unknown config key '{path}'{hint}")
        self.path, self.key = path, key


def key_paths(cls: type, key: str, prefix: str = "") -> list[str]:
    """The dotted paths at which ``key`` is a field in the tree of dataclasses under ``cls``."""
    hints, found = typing.get_type_hints(cls), []
    for field in dataclasses.fields(cls):
        path = f"{prefix}.{field.name}" if prefix else field.name
        if not field.init:
            continue
        if field.name == key:
            found.append(path)
        annotation = hints[field.name]
        for option in typing.get_args(annotation) or (annotation,):
            if dataclasses.is_dataclass(option):
                found += key_paths(option, key, path)
    return found


def from_dict(cls: type[T], data: dict, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, checking every key and type."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        try:
            if key not in fields:
                close = difflib.get_close_matches(str(key), list(fields), n=3, cutoff=0.5)
                hint = f"; did you mean {', '.join(close)}?" if close else f"; valid keys: {', '.join(fields)}"
                raise UnknownKey(path, str(key), hint)
            kwargs[key] = _check_type(value, hints[key], path)
        except UnknownKey as e:
            elsewhere = [p for p in key_paths(cls, e.key) if p != e.path] if not where else []
            if not elsewhere:
                raise
            places = " or ".join(f"under {p.rpartition('.')[0]} ({p})" if "." in p else f"at the top level ({p})"
                                 for p in elsewhere)
            raise UnknownKey(e.path, e.key, f"; {e.key} belongs {places}") from None
    missing = [name for name, f in fields.items() if name not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:  # TypeError would say "__init__() missing 1 required positional argument"
        where_ = f"{where}." if where else ""
        raise ConfigError(f"{where or cls.__name__}: missing {', '.join(missing)}; set "
                          + ", ".join(f"{where_}{name}=VALUE" for name in missing) + " (in the recipe or as an override)")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where or cls.__name__}: {e}") from None


def from_file(cls: type[T], recipe: dict, path: str | Path, overridden: dict | None = None) -> T:
    """``from_dict(cls, overridden)`` (``recipe`` as read from ``path``, with overrides applied; default: ``recipe``).
    A mistake the file holds by itself names the file, e.g. a key typed by hand into a run's config.yaml; one an
    override brings is the override's own (its key is named, as given)."""
    try:
        return from_dict(cls, recipe if overridden is None else overridden)
    except ConfigError as error:
        if overridden is not None and not _refuses(cls, recipe, str(error)):
            raise
        raise ConfigError(f"{path}: {error}") from None


def _close_recipes(path: Path) -> list[str]:
    """Recipes named like ``path`` (``cct_digits`` or ``tasks/cct_digit.yaml`` for ``tasks/cct_digits.yaml``) in
    its folder, in ./tasks and in the checkout's tasks/, as paths to type from here."""
    name = path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"
    folders = [path.parent, Path("tasks"), Path(__file__).resolve().parents[1] / "tasks"]
    found = {}
    for folder in folders:
        if folder.is_dir():
            recipes = {f.name: f for f in folder.iterdir() if f.suffix in (".yaml", ".yml")}
            matches = [name] if name in recipes else difflib.get_close_matches(name, list(recipes), n=1, cutoff=0.8)
            for match in matches:
                shown = os.path.relpath(recipes[match]) if not os.path.relpath(recipes[match]).startswith("..") \
                    else str(recipes[match])
                found.setdefault(os.path.realpath(recipes[match]), shown)
    exact = [shown for shown in found.values() if Path(shown).name == name]
    return (exact or list(found.values()))[:2]


def _refuses(cls: type, data: dict, message: str) -> bool:
    """Whether ``from_dict(cls, data)`` raises ``message``."""
    try:
        from_dict(cls, data)
    except ConfigError as error:
        return str(error) == message
    return False


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        problem = "is a folder" if path.is_dir() else "is not a file" if path.exists() else "not found"
        close = _close_recipes(path) if not path.exists() else []
        hint = f"did you mean {' or '.join(close)}?" if close else "give the path of a YAML file (see tasks/)"
        raise ConfigError(f"config file {path} {problem}; {hint}")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text; give a YAML file (see tasks/)") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {_yaml_problem(e)}; correct it") from None
    if data is None:
        raise ConfigError(f"{path} is empty; a recipe holds model:, data: and train: sections (see tasks/)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of config keys, not {type(data).__name__}")
    return data


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping: PyYAML keeps the last silently, so a second
    ``train:`` section (or ``lr:`` line) would drop the first one's settings unseen."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # << merges: later keys override them by design
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise ConfigError(f"key {key!r} is given twice (line {seen[key]} and line {line}); "
                                      "the first would be dropped unseen; keep one of them")
                seen[key] = line
        return super().construct_mapping(node, deep)


def _yaml_problem(error: yaml.YAMLError) -> str:
    """What PyYAML found wrong and where, on one line (its message spreads it over several): "while parsing a
    flow mapping at line 3, column 9: expected ',' or '}', but got '<stream end>' at line 4, column 1"."""
    def placed(text, mark):
        return f"{text} at line {mark.line + 1}, column {mark.column + 1}" if text and mark is not None else text
    parts = [placed(getattr(error, "context", None), getattr(error, "context_mark", None)),
             placed(getattr(error, "problem", None), getattr(error, "problem_mark", None))]
    return ": ".join(p for p in parts if p) or str(error).splitlines()[0]


def is_override(item: str) -> bool:
    """A command-line ``KEY=VALUE`` override, or ``~KEY`` (remove a key), rather than a file or an option."""
    return not item.startswith("-") and ("=" in item or item.startswith("~"))


def _written_apart(overrides: list[str], i: int) -> str | None:
    """The override that item ``i`` and its neighbours make when written without the spaces the shell split them
    at (``train.steps= 10``, ``train.steps =10``, ``train.steps = 10``, ``train.lr 1e-3``), with a word saying so."""
    before, after = overrides[i - 1] if i else "", overrides[i + 1] if i + 1 < len(overrides) else ""
    item = overrides[i]
    if before.endswith("=") and "=" not in item:
        joined = before + item
    elif item.startswith("=") or "=" not in item and after.startswith("="):
        joined = before + item if item.startswith("=") else item + after + (
            overrides[i + 2] if after == "=" and i + 2 < len(overrides) else "")
    elif "=" not in item and "." in item and after and not after.startswith("-") and "=" not in after:
        joined = f"{item}={after}"
    else:
        return None
    return f"{joined} (no spaces around '=': the shell splits an override at them)"


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``["train.lr=1e-3", "model.core.d_model=64"]`` -> nested keys set; values parsed as YAML.

    A mapping given to a key that holds one merges into it key by key, at every depth, as Hydra's overrides do
    (``train.ema={enabled: true}`` keeps the recipe's decay; replacing would drop the recipe's other settings
    unseen); a list or a scalar replaces. A component given with its name is new, so it replaces: the ``args``
    of ``data.name=token_file data.args={path: ...}``, or ``model.tokenizer={name: image_conv, args: {...}}``
    (the recipe's arguments were another component's). ``~a.b`` removes the key (Hydra's form), e.g. an argument
    the recipe gives its tokenizer and another tokenizer does not take."""
    named = {item.partition("=")[0].removesuffix(".name") for item in overrides if item.partition("=")[0].endswith(
        ".name") and "=" in item}
    for i, item in enumerate(overrides):
        if item.startswith("~"):
            _remove_key(data, item)
            continue
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override '{item}' must look like key.sub=value, e.g. "
                              f"{_written_apart(overrides, i) or 'train.lr=3e-4'}")
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{item}': '{part}' is not a mapping")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as e:  # e.g. train.lr=[1e-3, (an unclosed list)
            problem = getattr(e, "problem", None) or type(e).__name__
            raise ConfigError(f"override '{item}': the value is not valid YAML ({problem}); quote it as text, or "
                              "close its brackets, e.g. train.betas=[0.9,0.95]") from None
        renamed = leaf == "args" and ".".join(parents) in named
        node[leaf] = _merged(node[leaf], value) if isinstance(node.get(leaf), dict) and not renamed else value
    return data


def _merged(old: dict, new: Any) -> Any:
    if not isinstance(new, dict) or "name" in new:  # a named component is given whole
        return new
    return {**old, **{k: _merged(old[k], v) if isinstance(old.get(k), dict) else v for k, v in new.items()}}


def _remove_key(data: dict, item: str) -> None:
    """``~a.b.c``: delete c from data[a][b]; a key that is not there is refused (a typo would remove nothing)."""
    key = item[1:]
    if "=" in key or not key:
        raise ConfigError(f"override '{item}' removes a key and takes no value; give ~{key.partition('=')[0]} "
                          "(or KEY=VALUE to set it)")
    node, where = data, "the recipe's top level"
    *parents, leaf = key.split(".")
    for depth, part in enumerate([*parents, leaf]):
        if not isinstance(node, dict) or part not in node:
            there = ", ".join(map(str, node)) if isinstance(node, dict) else f"a {type(node).__name__}"
            raise ConfigError(f"override '{item}': the recipe has no key '{part}' under {where} (it has {there}); "
                              "remove one of those, or leave the override out")
        if depth == len(parents):
            del node[part]
            return
        node, where = node[part], ".".join([*parents, leaf][:depth + 1])


def read_json(path: str | Path, fix: str) -> Any:
    """The JSON value in ``path``; text that is not JSON is one line naming the file, the place and ``fix``."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text; {fix}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path} is not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); {fix}") from None

