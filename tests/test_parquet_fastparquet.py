"""Parquet through fastparquet, pandas' other engine: tests/test_parquet.py run again in a process where
pyarrow cannot be imported (as where only fastparquet is installed)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

BLOCK_PYARROW = '''import importlib.abc, sys


class NoPyarrow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "pyarrow":
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)", name=name)


sys.meta_path.insert(0, NoPyarrow())
'''


def test_the_parquet_tests_pass_with_fastparquet_and_no_pyarrow(tmp_path):
    pytest.importorskip("fastparquet")
    (tmp_path / "no_pyarrow.py").write_text(BLOCK_PYARROW)
    tests = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no_pyarrow",
                             "-W", "ignore::DeprecationWarning", str(tests / "test_parquet.py")],
                            capture_output=True, text=True, env=env, cwd=tests.parent)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr
    assert result.returncode == 0 and " passed" in summary and "skipped" not in summary, (
        result.stdout[-3000:] + result.stderr[-2000:])
