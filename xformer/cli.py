"""The `xformer` command. Each subcommand lives in its own module under xformer/commands/."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import commands
from .config import ConfigError


class UserError(Exception):
    """A mistake the user can fix (missing file, wrong column, wrong shape): one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="xformer", description="One transformer core for text, images and series.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        importlib.import_module(f"{commands.__name__}.{info.name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, UserError, FileNotFoundError) as e:
        print(f"xformer: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xformer: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
