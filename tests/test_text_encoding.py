"""Every text file xformer reads or writes is UTF-8, whatever the machine's locale says.

Without ``encoding=``, ``open()`` and ``Path.read_text`` / ``write_text`` use the locale's encoding (cp1252 on
most Windows machines, Latin-1 under some Unix locales), while ``write_atomically`` writes UTF-8: a recipe, a
class name or a path with an accent would come back as other characters, or not at all. This walks the
package's (and the user-facing data scripts') syntax trees for such calls."""
import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def text_calls_without_encoding(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or any(k.arg == "encoding" for k in node.keywords):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
        mode = mode.value if isinstance(mode, ast.Constant) else mode
        text_mode = mode is None or (isinstance(mode, str) and "b" not in mode)
        if name in ("read_text", "write_text"):
            found.append(f"{path.relative_to(root)}:{node.lineno}: {name}()")
        elif name == "open" and isinstance(func, ast.Name) and text_mode:
            found.append(f"{path.relative_to(root)}:{node.lineno}: open(..., {mode or 'r'!r})")
        elif name == "open" and isinstance(mode, str) and "b" not in mode:  # Path.open("w"), gzip.open(p, "rt")
            found.append(f"{path.relative_to(root)}:{node.lineno}: .open(..., {mode!r})")
    return found


def test_text_files_are_opened_as_utf8():
    files = sorted((ROOT / "xformer").rglob("*.py")) + sorted((ROOT / "data").rglob("*.py"))
    assert len(files) > 50
    found = [line for path in files for line in text_calls_without_encoding(path)]
    assert not found, "give encoding=\"utf-8\":\n" + "\n".join(found)


def test_the_check_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('open(p)\nopen(p, "a")\nopen(p, "rb")\nopen(p, encoding="utf-8")\nq.read_text()\n'
                      'q.write_text(s, encoding="utf-8")\ngzip.open(p, "rt")\nImage.open(p)\n', encoding="utf-8")
    found = text_calls_without_encoding(sample, tmp_path)
    assert [line.split(": ", 1)[0] for line in found] == ["sample.py:1", "sample.py:2", "sample.py:5", "sample.py:7"]


def test_a_recipe_with_an_accent_is_read_under_an_ascii_locale(tmp_path):
    """The C locale without Python's UTF-8 coercion: the locale's encoding is ASCII. Before, `xformer train` on
    this recipe ended in a UnicodeDecodeError traceback (xformer/config.py, reading it)."""
    recipe = tmp_path / "copy.yaml"
    recipe.write_text("# copy digits, a recipe saved by an editor in UTF-8: déjà vu\n"
                      + (ROOT / "tasks" / "copy.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    env = {**os.environ, "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    result = subprocess.run([sys.executable, "-c", "import locale, sys; from xformer.config import load_yaml; "
                             "print(locale.getpreferredencoding(False), sorted(load_yaml(sys.argv[1])))",
                             str(recipe)], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split(" ", 1) == ["ANSI_X3.4-1968", "['data', 'model', 'train']\n"], result.stdout
