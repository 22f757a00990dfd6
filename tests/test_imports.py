"""Imports run one way (DESIGN.md): core <- tokenizers / heads <- models <- data / train / generation /
interop <- compare / commands. Checked on the source: every ``import`` of every module of xformer/, at
module level or inside a function, parsed with ``ast`` (nothing is imported to run the checks).

A new top-level module or package of xformer/ must be given its layer in LAYERS.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "xformer"

# The layer of each top-level part of xformer/ ("" is xformer/__init__.py). A module may import
# its own layer and the ones below, never one above.
LAYERS = {
    # plain helpers that every layer may use (no model, no data)
    "errors": 0, "config": 0, "registry": 0, "folders": 0, "folder_lock": 0, "timestamps": 0, "class_names": 0,
    "batch": 0,  # the batch keys (names only: data, tokenizers, heads, generation and training share them)
    "core": 1,
    "tokens": 2,  # what a tokenizer hands to the core and the head (Tokens, TokenState)
    "tokenizers": 2, "heads": 2, "metrics_text": 2, "metrics_classification": 2, "metrics_forecast": 2,
    "models": 3, "baselines": 3, "ensemble": 3, "": 3,  # ensemble: trained models of one task, averaged
    "data": 4, "train": 4, "generation": 4, "interop": 4, "analysis": 4,
    "compare": 5, "commands": 5, "forecast": 5, "predict": 5, "predict_hf": 5, "predict_series": 5, "predict_text": 5,
    "predict_fill": 5, "generate_many": 5,  # generate_many: several prompts of `xformer generate`
    "demo": 5,
    "cli": 6, "__main__": 6,
}



def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def part(module: str) -> str:
    """'xformer.data.text' -> 'data'; 'xformer' -> ''."""
    return module.split(".")[1] if "." in module else ""


def imports(module: str) -> dict[str, set[str]]:
    """The xformer modules that ``module`` imports, each with the names taken from it ("*": the module
    itself). ``from pkg import name`` counts as importing pkg.name when that is a module, else pkg."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.setdefault(alias.name, set()).add("*")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in MODULES:
                    found.setdefault(submodule, set()).add("*")
                else:
                    found.setdefault(source, set()).add(alias.name)
    return {m: names for m, names in found.items() if m == "xformer" or m.startswith("xformer.")}


IMPORTS = {module: imports(module) for module in MODULES}
GRAPH = {module: set(targets) for module, targets in IMPORTS.items()}


def test_every_module_has_a_layer():
    unplaced = sorted({part(m) for m in MODULES} - set(LAYERS))
    assert not unplaced, f"give these parts of xformer/ a layer in LAYERS: {unplaced}"


def test_every_import_names_a_module_of_the_package():
    unknown = sorted(f"{m} -> {t}" for m, targets in GRAPH.items() for t in targets if t not in MODULES)
    assert not unknown, unknown


def test_imports_run_one_way():
    upward = sorted(f"{m} (layer {LAYERS[part(m)]}) imports {t} (layer {LAYERS[part(t)]}): {sorted(names)}"
                    for m, targets in IMPORTS.items() for t, names in targets.items()
                    if LAYERS[part(t)] > LAYERS[part(m)])
    assert not upward, "\n".join(upward)


def test_core_imports_nothing_from_the_rest_of_the_package():
    outside = sorted(f"{m} imports {t}" for m, targets in GRAPH.items() if part(m) == "core"
                     for t in targets if part(t) != "core")
    assert not outside, outside


def test_nothing_imports_a_command_module():
    callers = sorted(f"{m} imports {t}" for m, targets in GRAPH.items() if m != "xformer.cli"
                     for t in targets if part(t) == "commands")
    assert not callers, callers


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), and self-loops."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_modules():
    assert cycles(GRAPH) == []


def test_no_import_cycle_between_parts():
    """Nor between the parts (core, data, train, ...): a part that imports another is never imported back."""
    parts = {}
    for m, targets in GRAPH.items():
        parts.setdefault(part(m), set()).update(part(t) for t in targets if part(t) != part(m))
    assert cycles(parts) == []


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"a"}, "b": set()}, [["a"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_the_cycle_finder_finds_cycles(graph, expected):
    assert cycles(graph) == expected


def test_a_text_run_starts_without_timm_torchvision_or_sklearn():
    """The slow imports (timm pulls in torchvision and torch._dynamo: about 2 s, sklearn about 1 s at
    every command) load only in the functions that use them: importing every registered part, as
    ``xformer train`` does, and building a GPT leaves them out."""
    import subprocess
    import sys

    code = ("import sys, xformer.cli, xformer.train.run\n"
            "from xformer.registry import import_all_submodules\n"
            "for p in ('xformer.data', 'xformer.tokenizers', 'xformer.heads', 'xformer.baselines'):\n"
            "    import_all_submodules(p)\n"
            "from xformer.models import build_model\n"
            "from xformer.config import from_dict\n"
            "from xformer.models import ModelConfig\n"
            "build_model(from_dict(ModelConfig, {'architecture': 'decoder', 'core': {'d_model': 16, 'n_layers': 1,"
            " 'n_heads': 2, 'd_ff': 32}, 'tokenizer': {'name': 'text', 'args': {'vocab_size': 10,"
            " 'max_positions': 8}}, 'head': {'name': 'causal_lm'}}))\n"
            "print(' '.join(m for m in ('timm', 'torchvision', 'sklearn') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"loaded at start-up: {out.stdout.strip()}"
