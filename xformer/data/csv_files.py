"""Reading users' CSV files: a file that is not a readable comma-separated text CSV is refused in one line, and
series ids are read as written."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd
from pandas._libs.parsers import STR_NA_VALUES  # read_csv's default missing-value texts

from ..config import ConfigError
from .compressed import decompressed_bytes

# pandas 2's default float converter reads about a third of the values that a CSV holds with all their digits (as
# to_csv writes them) one unit off in the last place; its 'round_trip' converter reads them exactly, as pandas 3
# does by default (where the option is deprecated). The python engine parses with float(), exactly.
_EXACT_FLOATS = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


def comma_separated(path: Path, head: str) -> tuple[bool, str]:
    """(whether an Excel 'sep=,' line precedes the header, the header line) of a table whose first characters are
    ``head``; a table separated by ';' or tabs is refused in one line with pandas' fix. Read as CSV, such a file is
    one column named after its whole header line. Not read with that separator: a ';' file often writes decimal
    commas (3,5), which would be read as text."""
    lines = head.lstrip("\ufeff").split("\n", 2)
    first = lines[0].rstrip("\r")
    declared = re.fullmatch(r"sep=(.)", first)  # Excel's hint line, written by "sep=;" exports
    header = lines[1].rstrip("\r") if declared and len(lines) > 1 else first
    sep = declared.group(1) if declared else next((s for s in ";\t" if s in header and "," not in header), ",")
    if sep != ",":
        what = {";": "';'", "\t": "tabs"}.get(sep, repr(sep))
        line = f"after the line {first!r}, " if declared else ""
        raise ConfigError(f"{path} seems to be separated by {what} ({line}its header is {header.strip()!r}); give a "
                          f"comma-separated CSV, e.g. pandas.read_csv(path, sep={sep!r}"
                          f"{', skiprows=1' if declared else ''}).to_csv(new_path, index=False)")
    return bool(declared), header


def read_csv_file(path: Path, fix: str = "give a CSV with a header row", **options) -> pd.DataFrame:
    """``pd.read_csv(path, **options)``, with a file that is not a readable text CSV refused in one line
    ending in ``fix``. A name ending in .gz, .bz2, .xz or .zip is decompressed (pandas' ``compression="infer"``)."""
    head = decompressed_bytes(path, 8192)
    if not head.strip():
        raise ConfigError(f"{path} is empty; {fix}")
    if b"\0" in head:  # text never holds NUL bytes; pandas may otherwise read garbage columns
        raise ConfigError(f"{path} is not a text CSV file (it holds NUL bytes); {fix}")
    if "sep" in options or "delimiter" in options:
        header = head.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0]
    else:
        declared, header = comma_separated(path, head.decode(errors="replace"))
        header = header.encode()
        if declared and "skiprows" not in options:
            options = {**options, "skiprows": 1}
    if not {"header", "names"} & set(options):  # pandas would rename a repeated name to "a.1", a column not in the file
        names = next(csv.reader([header.decode(errors="replace").rstrip("\r")]), [])
        twice = next((name for name in names if name and names.count(name) > 1), None)
        if twice is not None:
            raise ConfigError(f"{path}: its header names column {twice!r} {names.count(twice)} times; give each "
                              "column its own name")
    if options.get("engine", "c") == "c":
        options = {**_EXACT_FLOATS, **options}
    try:
        return pd.read_csv(path, **options)
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not a text CSV file (byte {e.object[e.start:e.start + 1]!r} at offset "
                          f"{e.start} is not UTF-8); {fix}") from None
    except pd.errors.EmptyDataError:
        raise ConfigError(f"{path} is empty; {fix}") from None
    except (pd.errors.ParserError, csv.Error) as e:  # csv.Error: the python engine's delimiter sniffer
        reason = " ".join(str(e).replace("Error tokenizing data. C error:", "").split())
        raise ConfigError(f"{path} cannot be read as CSV ({reason}); {fix}, the same number of fields on "
                          "every line") from None


def read_ids_as_text(path: Path, id_column: str = "unique_id") -> pd.DataFrame:
    """A CSV whose ``id_column`` (if it has one) is read as written: ``001`` stays ``001``, and the texts pandas
    takes for missing values ("NA" for North America, "None", "null", "nan", "#N/A", ...) are ids there; only an
    empty cell is a missing id. Every other column keeps pandas' missing values."""
    columns = read_csv_file(path, nrows=0).columns
    if id_column not in columns:
        return read_csv_file(path)
    missing = {c: [""] if c == id_column else sorted(STR_NA_VALUES) for c in columns}  # per column, by its name
    return read_csv_file(path, dtype={id_column: str}, keep_default_na=False, na_values=missing)


__all__ = ["comma_separated", "read_csv_file", "read_ids_as_text"]
