"""`pip install .` (not editable) installs a wheel, not the checkout: the wheel must hold every file of the
package, or a command fails only for users who installed that way. setuptools ships .py files by itself but
other files (a JSON table, a template) only when told, so a new one would be left out without a word."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_every_file_of_the_package_and_the_console_script(tmp_path):
    source = tmp_path / "source"  # a copy, so that building writes nothing into the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "xformer", source / "xformer", ignore=shutil.ignore_patterns("__pycache__"))
    # the PEP 517 hook that pip calls, called here without pip (uv's environments have none) or a download
    build = f"from setuptools import build_meta; build_meta.build_wheel({str(tmp_path / 'dist')!r})"
    (tmp_path / "dist").mkdir()
    built = subprocess.run([sys.executable, "-c", build], cwd=source, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("xformer-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    packaged = {name for name in names if name.startswith("xformer/")}
    on_disk = {path.relative_to(source).as_posix() for path in (source / "xformer").rglob("*") if path.is_file()}
    assert packaged == on_disk, (sorted(on_disk - packaged), sorted(packaged - on_disk))
    assert "xformer = xformer.cli:console" in entry_points
