"""The run folders a benchmark trains into: checked before any work, never replaced unasked.

A benchmark that finds one of its run folders holding files stops in one line (exit status 2) unless it was
given --overwrite; then, and only then, each old folder is removed just before its run starts again.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path


def check_fresh(folders: list[Path], overwrite: bool) -> None:
    """Stop (exit 2, one line) if any of ``folders`` holds files and the user did not pass --overwrite."""
    taken = [folder for folder in folders if folder.is_dir() and any(folder.iterdir()) or folder.is_file()]
    if taken and not overwrite:
        more = f" (and {len(taken) - 1} more of this benchmark's run folders)" if len(taken) > 1 else ""
        print(f"{taken[0]} already exists{more}; pass --out with another prefix, or --overwrite to replace "
              "them", file=sys.stderr)
        raise SystemExit(2)


def clear(folder: Path) -> None:
    """Remove an old run folder the user asked to replace (check_fresh has run before any work)."""
    if folder.is_dir():
        shutil.rmtree(folder)
    elif folder.exists():
        folder.unlink()
