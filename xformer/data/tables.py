"""Users' tables in files: a CSV (csv_files.py) or a Parquet file, read by one function and written by another.

Forecasting panels are often shared as Parquet (e.g. the M4 series of the Hugging Face hub's chronos_datasets).
Parquet needs an engine, pyarrow (``pip install "xformer[parquet]"``) or fastparquet, which the runtime does not
depend on: without one, a Parquet file is refused in one line naming the fix, before any work. A Parquet file
keeps its columns' types: its ids stay as stored (an id column of whole numbers stays numbers), where a CSV's are
read as the text written (csv_files.read_ids_as_text)."""
from __future__ import annotations

import importlib
import io
from pathlib import Path

import pandas as pd

from ..config import ConfigError
from .compressed import compressed_as_named
from .csv_files import read_ids_as_text

PARQUET_SUFFIXES = (".parquet", ".pq")
PARQUET_MAGIC = b"PAR1"  # a Parquet file's first (and last) four bytes
INSTALL = 'install it with: pip install "xformer[parquet]"'


def is_parquet(path: str | Path) -> bool:
    """A Parquet file by its name, or by its first bytes (a Parquet file named .csv is read as what it is)."""
    path = Path(path)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            return f.read(4) == PARQUET_MAGIC
    except OSError:
        return False


def require_parquet_engine(path: str | Path, what: str = "reading") -> None:
    """Refuse in one line, naming the fix, when neither pyarrow nor fastparquet can be imported."""
    for module in ("pyarrow", "fastparquet"):
        try:
            importlib.import_module(module)
            return
        except ImportError:
            pass
    raise ConfigError(f"{what} {path} as Parquet needs the pyarrow package, which is not installed; {INSTALL} "
                      "(or use a .csv file)")


def require_engine_for_output(path: str | Path | None, option: str) -> None:
    """Before any work: a .parquet / .pq output (``option`` names it in the error) needs a Parquet engine."""
    if path is not None and Path(path).suffix.lower() in PARQUET_SUFFIXES:
        require_parquet_engine(path, f"writing {option}")


def _parquet_errors() -> tuple[type[BaseException], ...]:
    """What a damaged or foreign file raises: pyarrow's errors (ArrowInvalid is a ValueError, ArrowIOError an
    OSError, ArrowNotImplementedError a NotImplementedError; all are ArrowException), fastparquet's."""
    errors: tuple[type[BaseException], ...] = (ValueError, OSError, NotImplementedError)
    try:
        import pyarrow.lib

        errors += (pyarrow.lib.ArrowException,)
    except ImportError:
        pass
    return errors


def series_file(source: str | Path) -> Path:
    """``source`` as the path of a regular file: a missing one is a FileNotFoundError, a folder, a pipe or a
    device (``<(zcat x.csv.gz)``, /dev/stdin) a one-line refusal, since a table is read from its file twice."""
    path = Path(source)
    if path.is_file():
        return path
    if path.is_dir():
        raise ConfigError(f"series file {path} is a folder; give the path of a CSV or Parquet file")
    if path.exists():
        raise ConfigError(f"series file {path} is a pipe or a device, which can be read only once; save the table "
                          "to a file and give its path")
    raise FileNotFoundError(f"series file not found: {path}")


def read_table(path: str | Path, id_column: str = "unique_id") -> pd.DataFrame:
    """A CSV file (its ``id_column`` read as written: ``read_ids_as_text``) or a Parquet file, as a frame.

    A Parquet file written from a frame with a named index (``unique_id``, or a wide table's dates) holds that
    index as a column of the file, and it is read as a column: the file's table is the same whichever index
    its writer had. An unnamed index (row numbers) stays the frame's index, not a column."""
    path = Path(path)
    if not is_parquet(path):
        return read_ids_as_text(path, id_column)
    require_parquet_engine(path)
    try:
        frame = pd.read_parquet(path)
    except _parquet_errors() as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise ConfigError(f"{path} cannot be read as Parquet ({reason}); give a Parquet file (e.g. written by "
                          "pandas' DataFrame.to_parquet) or a CSV") from None
    if any(name is not None for name in frame.index.names):
        frame = frame.reset_index()
    return frame


class _BufferKeptOpen(io.BytesIO):
    """fastparquet before 2024.11 closes the file object it wrote to, and a closed BytesIO drops its bytes."""

    def close(self) -> None:
        pass


def table_data(frame: pd.DataFrame, path: str | Path | None, float_format: str, index: bool = False,
               index_label: str | None = None) -> str | bytes:
    """``frame`` as the contents of a file named ``path``: Parquet bytes for a .parquet / .pq name (values
    exact, dates as timestamps), else (or with no ``path``: standard output) CSV text rounded by ``float_format``,
    compressed for a .gz / .bz2 / .xz / .zip name as pandas would write it there (``read_csv_file`` reads it).
    ``index``: the frame's index is written too, as the first column, named ``index_label`` or its own name."""
    suffix = Path(path).suffix.lower() if path is not None else ""
    if suffix in PARQUET_SUFFIXES:
        require_parquet_engine(path, "writing")
        if index:
            frame = (frame.rename_axis(index_label) if index_label is not None else frame).reset_index()
        buffer = _BufferKeptOpen()
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue()
    text = frame.to_csv(index=index, index_label=index_label, float_format=float_format)
    return text if path is None else compressed_as_named(path, text)


__all__ = ["PARQUET_SUFFIXES", "is_parquet", "read_table", "require_engine_for_output", "require_parquet_engine",
           "series_file", "table_data"]
