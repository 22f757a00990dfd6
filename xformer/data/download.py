"""What the prepare scripts of data/ share: a download (only when the user gives a URL; nothing in
xformer downloads on its own) and their command-line ending (bad input: one line, exit status 2)."""
from __future__ import annotations

import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError, UserError


def download(url: str, dest: Path, instead: str = "a local file") -> Path:
    """``url`` to ``dest`` (through a .part file, so an interrupted download leaves no half file)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        urllib.request.urlretrieve(url, part)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot download {url} ({e}); give {instead} instead") from None
    part.replace(dest)
    return dest


def run_script(main: Callable[[], object], name: str = "prepare.py") -> None:
    """``main()``; a bad input or a missing file ends in one line on stderr and exit status 2, no traceback."""
    try:
        main()
    except (UserError, ConfigError, FileNotFoundError) as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        sys.exit(2)
