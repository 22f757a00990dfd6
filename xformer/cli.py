"""The `xformer` command. Each subcommand lives in its own module under xformer/commands/."""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import warnings

from . import commands
from .config import is_override
from .errors import ConfigError, UserError  # UserError re-exported: `from xformer.cli import UserError` works


class OneLineParser(argparse.ArgumentParser):
    """argparse, whose mistakes (an unknown option, a value of the wrong type) end like every other
    user error: one line naming the problem and where help is, exit status 2. Subcommands inherit it."""

    def error(self, message: str):
        self.exit(2, f"xformer: error: {message}; see {self.prog} --help\n")


# the subcommands that run a model on the CPU (or feed one from it): each takes --threads N
THREADED_COMMANDS = ("attention", "average", "backtest", "compare", "demo", "evaluate", "export", "forecast", "generate",
                     "predict", "train")


def thread_count(text: str) -> int:
    """--threads N: a whole number >= 1 (argparse turns the TypeError's message into the one-line error)."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"the number of threads must be a whole number >= 1, got {text!r}; "
                                         "e.g. --threads 2")
    return n


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = OneLineParser(prog="xformer", description="One transformer core for text, images and series.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        importlib.import_module(f"{commands.__name__}.{info.name}").add_parser(sub)
    for name in THREADED_COMMANDS:
        sub.choices[name].add_argument(
            "--threads", type=thread_count, metavar="N",
            help="CPU threads torch computes with (torch.set_num_threads; default: torch's, about one per core). "
                 "Give each of several runs sharing a machine its share of the cores, e.g. --threads 2")
    return parser


PACKAGE = os.path.dirname(os.path.abspath(__file__))


def own_warnings_plain(show):
    """``warnings.showwarning`` for the commands: a warning xformer's own code issues is one plain line, as its
    errors (``xformer: warning: ...``), not Python's two lines of file, line number and source; others' warnings
    (torch, pandas) go to ``show``, Python's."""
    def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
        if os.path.abspath(filename).startswith(PACKAGE + os.sep):
            print(f"xformer: warning: {message}", file=sys.stderr if file is None else file)
        else:
            show(message, category, filename, lineno, file, line)
    return show_warning


def _hyphenated(item: str) -> str:
    """``--max_new_tokens=8`` as ``--max-new-tokens=8``: Hugging Face's scripts spell their options with
    underscores, xformer's (as argparse's and timm's) with hyphens; no xformer option has an underscore."""
    name, eq, value = item.partition("=")
    return name.replace("_", "-") + eq + value if name.startswith("--") and "_" in name else item


def _as_override(extra: list[str]) -> str:
    """For an option a Hugging Face or timm user would type (``--steps 10``, ``--batch-size=8``,
    ``--output_dir DIR``): the override or option that says it here, as the end of the error line."""
    from .config import key_paths
    from .train.config import ExperimentConfig

    first = extra[0]
    if not first.startswith("--"):
        return ""
    name, _, value = first[2:].partition("=")
    value = value or (extra[1] if len(extra) > 1 and not extra[1].startswith("-") else "VALUE")
    key = name.replace("-", "_")
    if key in ("output_dir", "output", "out_dir", "run_dir"):
        return f"; the run folder is --out {value}"
    paths = key_paths(ExperimentConfig, key)
    return f"; settings are KEY=VALUE overrides, not options: {paths[0]}={value}" if paths else ""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    typed = sys.argv[1:] if argv is None else list(argv)
    read = [_hyphenated(item) for item in typed]
    given = dict(zip(read, typed))  # an unknown option is echoed as the user typed it
    args, extra = parser.parse_known_args(read)
    # KEY=VALUE overrides may follow the options too (xformer train RECIPE --out RUN train.steps=2), as in
    # Hydra-style tools; anything else left over is the usual one-line error
    overrides = next((name for name in ("overrides", "items") if isinstance(getattr(args, name, None), list)), None)
    if extra and overrides and all(is_override(item) for item in extra):
        getattr(args, overrides).extend(extra)
    elif extra:
        hint = _as_override(extra) if args.command == "train" else ""  # the one command whose overrides set train.*
        parser.error(f"unrecognized arguments: {' '.join(given.get(item, item) for item in extra)}{hint}")
    threads = getattr(args, "threads", None)
    if threads is not None:
        import torch

        # torch's default (one thread per core) in each of several concurrent runs oversubscribes a shared
        # machine: the threads spin against each other and every run slows down many times over
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = own_warnings_plain(warnings.showwarning)
            args.func(args)
            sys.stdout.flush()  # what is still buffered (stdout to a pipe is) fails here, not at interpreter exit
    except (ConfigError, UserError, FileNotFoundError) as e:
        print(f"xformer: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (xformer ... | head): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the flush at exit cannot fail again
        return 141
    except KeyboardInterrupt as e:  # a TrainingInterrupted says where the run stopped and what it kept
        print(f"xformer: interrupted{f': {e}' if str(e) else ''}", file=sys.stderr)
        return getattr(e, "exit_status", 130)
    except Exception as e:  # a full disk, a denied permission: the machine's failure, status 1 (train/storage.py)
        from .train.storage import describe, environment_error

        failure = environment_error(e)
        if failure is None:
            raise
        training = args.command == "train"
        run_dir = (args.resume or args.out) if training else None
        print(f"xformer: error: {describe(failure, run_dir, getattr(args, 'out', None), training)}", file=sys.stderr)
        return 1
    finally:
        if threads is not None:  # main() called in-process (tests, notebooks) leaves the caller's setting
            torch.set_num_threads(previous)
    return 0


def console() -> None:
    """The ``xformer`` command: ``main()``, then exit with its status.

    A rank of a torchrun job leaves with ``os._exit`` once its output is flushed: gloo's worker threads
    outlive ``destroy_process_group`` (references from torch's C++ side keep the group), and when one of
    them frees a finished collective's tensor while the interpreter is shutting down it cannot take the
    GIL, and the rank aborts ("terminate called without an active exception"; about 1 two-process run in
    12 on the loaded 2-core machine) after a run that had saved everything. Skipping the interpreter's
    shutdown is safe there because every file a run writes is closed by then."""
    status = main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


def _one_line(error: Exception) -> str:
    """The message of a user error. One raised in a DataLoader worker process reaches us wrapped in the
    worker's traceback ("Caught ConfigError in DataLoader worker process 0. Original Traceback ..."),
    whose last line is "module.ErrorType: message"."""
    lines = str(error).strip().splitlines()
    if len(lines) > 1 and lines[0].startswith("Caught "):
        return lines[-1].split(": ", 1)[-1]
    return " ".join(line.strip() for line in lines)


if __name__ == "__main__":
    console()
