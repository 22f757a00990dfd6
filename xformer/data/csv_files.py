"""Reading users' CSV files: a file that is not a readable comma-separated text CSV is refused in one line, and
series ids are read as written. Numbers held as text (a column read with dtype=str, a spreadsheet's export) are
read as numbers, a blank text as a missing value, and one written with a decimal comma or thousands separators is
named with the call that reads it."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd
from pandas._libs.parsers import STR_NA_VALUES  # read_csv's default missing-value texts

from ..config import ConfigError
from .compressed import decompressed_bytes

# pandas 2's default float converter reads about a third of the values that a CSV holds with all their digits (as
# to_csv writes them) one unit off in the last place; its 'round_trip' converter reads them exactly, as pandas 3
# does by default (where the option is deprecated). The python engine parses with float(), exactly.
_EXACT_FLOATS = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


def comma_separated(path: Path, head: bytes | str) -> tuple[bool, bytes]:
    """(whether an Excel 'sep=,' line precedes the header, the header line) of a table whose first bytes are
    ``head``; a table separated by ';' or tabs (after a 'sep=;' line or not) is refused in one line with pandas'
    fix (``refuse_other_separators``)."""
    head = head.encode() if isinstance(head, str) else head
    header, body = (head.lstrip(b"\xef\xbb\xbf").split(b"\n", 1) + [b""])[:2]
    if re.fullmatch(rb"sep=,", header.strip()):  # Excel's hint line, written by "sep=," exports: skipped
        return True, body.split(b"\n", 1)[0].rstrip(b"\r")
    refuse_other_separators(path, header, body)
    return False, header


def read_csv_file(path: Path, fix: str = "give a CSV with a header row", **options) -> pd.DataFrame:
    """``pd.read_csv(path, **options)``, with a file that is not a readable text CSV refused in one line
    ending in ``fix``. A name ending in .gz, .bz2, .xz or .zip is decompressed (pandas' ``compression="infer"``)."""
    head = decompressed_bytes(path, 8192)
    if not head.strip():
        raise ConfigError(f"{path} is empty; {fix}")
    workbook = head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0"))  # a zip (.xlsx), an OLE file (.xls)
    if workbook and Path(path).suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        raise ConfigError(f"{path} is an Excel workbook, not a CSV; save it as CSV UTF-8 (comma delimited), or "
                          "convert it with pandas.read_excel(path).to_csv(new_path, index=False)")
    if b"\0" in head:  # text never holds NUL bytes; pandas may otherwise read garbage columns
        raise ConfigError(f"{path} is not a text CSV file (it holds NUL bytes); {fix}")
    if "sep" in options or "delimiter" in options:
        header = head.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0]
    else:
        declared, header = comma_separated(path, head)
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


def refuse_other_separators(path: Path, header: bytes, body: bytes) -> None:
    """A file separated by ';' or tabs, read as CSV, is one column named after its whole header line: say what it
    is instead, with the pandas call that rewrites it. Not read with that separator here: a ';' file (a spreadsheet's
    export in a European locale) often writes decimal commas (3,5) and dates day first with dots (13.01.2024), which
    the fix then names, and Excel's first line 'sep=;' (its hint of the separator), which the fix skips."""
    hint = header.strip().decode(errors="replace")
    skip = re.fullmatch(r"sep=.", hint) is not None
    if skip:
        header, body = (body.split(b"\n", 1) + [b""])[:2]
    sep = hint[-1].encode() if skip else next((s for s in (b";", b"\t") if s in header and b"," not in header), None)
    if sep is None:
        return
    rows = [[f.strip().strip(b'"') for f in line.split(sep)] for line in body.splitlines()[:50]]
    commas = sep != b"," and any(_DECIMAL_COMMA.fullmatch(f.decode(errors="replace")) for row in rows for f in row)
    dots = commas and any(_DOTTED.fullmatch(f.decode(errors="replace")) for row in rows for f in row)  # 1.234,5
    names = [n.strip().strip(b'"').decode(errors="replace") for n in header.split(sep)]
    dotted = list(dict.fromkeys(names[i] for row in rows for i, f in enumerate(row[:len(names)])  # 13.01.2024: a
                                if re.fullmatch(rb"\d{1,2}\.\d{1,2}\.\d{4}( [\d:.]+)?", f)))  # day first
    fix = ["path"] + [f"sep={sep.decode()!r}"] * (sep != b",") + ["skiprows=1"] * skip + ["decimal=','"] * commas
    fix += ["thousands='.'"] * dots
    fix += [f"parse_dates={dotted}", "dayfirst=True"] if dotted else []
    what = {b";": "';'", b"\t": "tabs", b",": "commas"}.get(sep, repr(sep.decode()))
    said = " with decimal commas (3,5)" * commas + f", after a first line {hint!r}" * skip
    raise ConfigError(f"{path} seems to be separated by {what}{said} (its header is "
                      f"{header.decode(errors='replace').strip()!r}); give a comma-separated CSV, e.g. "
                      f"pandas.read_csv({', '.join(fix)}).to_csv(new_path, index=False)")


_DOTTED = re.compile(r"[-+]?\d{1,3}(\.\d{3})+,\d+")  # 1.234,5: '.' between thousands, a decimal comma
_DECIMAL_COMMA = re.compile(rf"[-+]?\d*,\d+|{_DOTTED.pattern}")
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?")


def text_numbers(values: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """``values`` as float64, and where they hold a value that is no number (text, not a blank one: blank text,
    as a spreadsheet leaves an empty cell, is a missing value as an empty CSV field is)."""
    numbers = values.apply(pd.to_numeric, errors="coerce").astype("float64")
    text = numbers.isna().to_numpy() & values.notna().to_numpy()
    if text.any():  # looked at only then: a Python call per cell
        text &= ~values.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy()
    return numbers, text


def number_text(value, column: str) -> str:
    """How to read ``value`` of ``column`` when it is a number written with a decimal comma (3,5) or thousands
    separators (1,500.25), as spreadsheets in some locales write them: "" for any other value."""
    text = value.strip() if isinstance(value, str) else ""
    fix = f"or in pandas: df['{column}'] = pd.to_numeric(df['{column}'].str.replace"
    if _THOUSANDS.fullmatch(text) and "." in text:
        return (f"; {value!r} is a number written with a thousands separator: read the CSV with "
                f"pandas.read_csv(path, thousands=','), {fix}(',', ''))")
    if _DOTTED.fullmatch(text):
        return (f"; {value!r} is a number written with a decimal comma and '.' between thousands: read the CSV with "
                f"pandas.read_csv(path, sep=';', decimal=',', thousands='.'), {fix}('.', '').str.replace(',', '.'))")
    if _DECIMAL_COMMA.fullmatch(text):
        return (f"; {value!r} is a number written with a decimal comma: read the CSV with pandas.read_csv(path, "
                f"decimal=',') (and sep=';' for a file separated by ';'), {fix}(',', '.'))")
    return ""


def read_ids_as_text(path: Path, id_column: str = "unique_id") -> pd.DataFrame:
    """A CSV whose ``id_column`` (if it has one) is read as written: ``001`` stays ``001``, and the texts pandas
    takes for missing values ("NA" for North America, "None", "null", "nan", "#N/A", ...) are ids there; only an
    empty cell is a missing id. Every other column keeps pandas' missing values."""
    columns = read_csv_file(path, nrows=0).columns
    if id_column not in columns:
        return read_csv_file(path)
    missing = {c: [""] if c == id_column else sorted(STR_NA_VALUES) for c in columns}  # per column, by its name
    return read_csv_file(path, dtype={id_column: str}, keep_default_na=False, na_values=missing)


__all__ = ["comma_separated", "read_csv_file", "read_ids_as_text", "text_numbers", "number_text"]
