"""Text to train on without a download: the default corpus and the reader for the user's files.

The default corpus is the Python Language Reference as it ships inside every
CPython installation (``pydoc_data.topics``: the text ``help("if")`` prints,
about 465,000 characters of English prose and grammar in Python 3.11). It is
real, edited technical English, so WordPiece learns real sub-words from it
and a language model's loss on it means something. Its exact content follows
the Python version: runs record which one they used (``corpus_name()``).
"""
from __future__ import annotations

import platform
from collections.abc import Iterable
from pathlib import Path

from ..config import ConfigError
from .compressed import inner_suffix, read_text_file


def default_corpus() -> str:
    """Every topic of the bundled reference manual, in sorted topic order, separated by blank lines."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name].strip() for name in sorted(topics)) + "\n"


def corpus_name() -> str:
    return f"python-{platform.python_version()}-pydoc-topics"


def text_files_in(folder: Path) -> list[Path]:
    """A folder's text files (``.txt``, compressed too: ``.txt.gz``), in its sub-folders too, in the order of their
    paths; hidden files and folders skipped (``load_dataset("text", data_dir=...)`` reads a folder so)."""
    found = sorted(path for path in folder.rglob("*") if path.is_file() and inner_suffix(path) == ".txt"
                   and not any(part.startswith(".") for part in path.relative_to(folder).parts))
    if not found:
        raise ConfigError(f"the folder {folder} holds no .txt files; give text files, or a folder of .txt files")
    return found


def read_text_files(paths: Iterable[str | Path] | str | Path | None) -> str:
    """The files' text, a blank line after each file (UTF-8); a folder gives its .txt files (``text_files_in``);
    None or [] gives the default corpus."""
    if paths is None or paths == []:
        return default_corpus()
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [item for path in map(Path, paths) for item in (text_files_in(path) if path.is_dir() else [path])]
    parts = []
    for path in paths:
        if not path.is_file():
            several = any(c in path.name for c in "*?[,")  # a pattern or a comma list: no shell expands it here
            raise ConfigError(f"text file {path} does not exist; give existing UTF-8 text files " + (
                "as a list, data.args.files=[a.txt, b.txt], or their folder (its .txt files are read)" if several else
                "(or no files for the built-in corpus)"))
        try:
            text = read_text_file(path)  # decompressed for a .gz / .bz2 / .xz / .zip name
        except UnicodeDecodeError as e:
            raise not_utf8_text(path, e) from None
        if "\0" in text:  # valid UTF-8 yet binary (an archive, a database): text never holds NUL
            raise ConfigError(f"{path} is not a text file (it holds NUL bytes); give UTF-8 text files")
        parts.append(text)
    # a file ends its last paragraph: a blank line after each file, its own final newline or not, so that a
    # document per file (written without one) does not run into the next one's first paragraph
    text = "\n".join(part if not part or part.endswith("\n") or i == len(parts) - 1 else part + "\n"
                     for i, part in enumerate(parts))
    if not text.strip():
        raise ConfigError("the text files are empty; give files with text in them")
    return text


def not_utf8_text(path: Path, error: UnicodeDecodeError) -> ConfigError:
    """The one line for a file that is binary or in another encoding than UTF-8."""
    # iconv without -f reads the locale's encoding, UTF-8 on most machines: it stops at the same byte
    return ConfigError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start}); give a text file, "
                       "converting it if needed, e.g. iconv -f cp1252 -t utf-8 FILE > NEW for Windows' encoding "
                       "(Notepad's ANSI, Excel's plain CSV; its 'CSV UTF-8' needs no conversion)")


__all__ = ["default_corpus", "corpus_name", "read_text_files", "text_files_in", "not_utf8_text"]
