"""Reading users' CSV files: a file that is not a readable comma-separated text CSV is refused in one line, and
series ids are read as written."""
from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import zipfile
from pathlib import Path

import pandas as pd
from pandas._libs.parsers import STR_NA_VALUES  # read_csv's default missing-value texts

from ..config import ConfigError

# pandas 2's default float converter reads about a third of the values that a CSV holds with all their digits (as
# to_csv writes them) one unit off in the last place; its 'round_trip' converter reads them exactly, as pandas 3
# does by default (where the option is deprecated). The python engine parses with float(), exactly.
_EXACT_FLOATS = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


# the compressions pandas infers from a CSV's name and Python reads without another package
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _head(path: Path, size: int = 8192) -> bytes:
    """The first ``size`` bytes of the CSV text in ``path``, decompressed as ``pd.read_csv`` will read it."""
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                names = [name for name in archive.namelist() if not name.endswith("/")]
                if len(names) != 1:
                    raise ConfigError(f"{path} holds {len(names)} files; give a zip archive of one CSV file")
                with archive.open(names[0]) as f:
                    return f.read(size)
        with _OPENERS.get(suffix, open)(path, "rb") as f:
            return f.read(size)
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as e:
        if suffix not in COMPRESSIONS:
            raise
        reason = " ".join(str(e).split()) or type(e).__name__
        raise ConfigError(f"{path} cannot be decompressed as {COMPRESSIONS[suffix]} ({reason}); give a CSV "
                          f"compressed as its name says, or the CSV itself") from None


def compressed_as_named(path: str | Path, text: str) -> str | bytes:
    """``text`` as the contents of a file named ``path``: compressed for a .gz / .bz2 / .xz / .zip name, as
    pandas' ``to_csv`` would write it there, else the text itself. No time stamp goes into a gzip header or a
    zip entry, so the same text always gives the same bytes."""
    suffix = Path(path).suffix.lower()
    if suffix not in COMPRESSIONS:
        return text
    data = text.encode("utf-8")
    if suffix == ".zip":  # one member, named as the file without .zip (pandas' archive_name)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(zipfile.ZipInfo(Path(path).stem, date_time=(1980, 1, 1, 0, 0, 0)), data,
                             compress_type=zipfile.ZIP_DEFLATED)
        return buffer.getvalue()
    return {".gz": lambda: gzip.compress(data, mtime=0), ".bz2": lambda: bz2.compress(data),
            ".xz": lambda: lzma.compress(data)}[suffix]()


def read_csv_file(path: Path, fix: str = "give a CSV with a header row", **options) -> pd.DataFrame:
    """``pd.read_csv(path, **options)``, with a file that is not a readable text CSV refused in one line
    ending in ``fix``. A name ending in .gz, .bz2, .xz or .zip is decompressed (pandas' ``compression="infer"``)."""
    head = _head(path)
    if not head.strip():
        raise ConfigError(f"{path} is empty; {fix}")
    if b"\0" in head:  # text never holds NUL bytes; pandas may otherwise read garbage columns
        raise ConfigError(f"{path} is not a text CSV file (it holds NUL bytes); {fix}")
    header = head.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0]
    for sep, what in ((b";", "';'"), (b"\t", "tabs")):
        # read as CSV, such a file is one column named after its whole header line: say what it is instead. Not
        # read with that separator: a ';' file often writes decimal commas (3,5), which would be read as text
        if "sep" not in options and "delimiter" not in options and sep in header and b"," not in header:
            shown = header.decode(errors="replace").strip()
            raise ConfigError(f"{path} seems to be separated by {what} (its header is {shown!r}); give a "
                              f"comma-separated CSV, e.g. pandas.read_csv(path, sep={sep.decode()!r})"
                              ".to_csv(new_path, index=False)")
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


__all__ = ["COMPRESSIONS", "compressed_as_named", "read_csv_file", "read_ids_as_text"]
