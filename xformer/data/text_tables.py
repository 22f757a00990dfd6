"""Labelled texts as tables: the files ``text_classification`` trains on and ``xformer predict`` classifies.

    .csv                  comma separated, quoted as Excel / pandas write it, a header row
    .tsv / .tab           tab separated, no quoting (GLUE's files), a header row
    .jsonl / .json        JSON Lines (one object per line), or one JSON array of objects: Hugging Face's
                          ``load_dataset("json")`` files; the keys are the columns
    .parquet / .pq        Parquet (Hugging Face's hub datasets), read by tables.read_table: needs pyarrow

A CSV separated by ';' (Excel's export in many locales) is refused in one line with the pandas fix, as the series
reader refuses it (csv_files.comma_separated); Excel's 'sep=,' first line is skipped.

Any of them may be compressed as its name says (``reviews.jsonl.gz``, compressed.py). ``table_reader`` gives
the rows of each as ``csv.DictReader`` gives a CSV's: ``fieldnames``, then one dict of strings per row (a JSON
number or boolean as its text: label 1 is "1"; a key a row lacks, or null, is missing: read rows with ``.get``;
a Parquet cell as a CSV writes it: 1, 1.0, True, a missing value missing), and ``line_num``, the line of the row
last read (a Parquet file's row number).
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from .compressed import inner_suffix, read_text_file

from .csv_files import comma_separated
from .tables import PARQUET_SUFFIXES, read_table

# a list in a cell: several values, as a multi-label data set's labels (Hugging Face's multi_label_classification)
MULTI_LABEL = (" (several values in one cell, as multi-label classes are held: text_classification gives each text "
               "one class; give one label per row)")
TABLE_SUFFIXES = (".csv", ".tsv", ".tab", ".jsonl", ".json", *PARQUET_SUFFIXES)


class JsonRows:
    """The objects of a JSON Lines file (or of one JSON array) as a ``csv.DictReader``'s rows; malformed JSON or
    an entry that is not an object raises ``csv.Error`` naming its line."""

    def __init__(self, content: str):
        if content.lstrip().startswith("["):  # one array: its entries, all on the lines they start on
            try:
                entries = json.loads(content)
            except ValueError as e:
                raise csv.Error(f"it is not JSON ({e})") from None
            self.rows = [(1, entry) for entry in entries]
        else:
            self.rows = [(number, self._parse(line, number)) for number, line in enumerate(content.splitlines(), 1)
                         if line.strip()]
        for number, entry in self.rows:
            if not isinstance(entry, dict):
                raise csv.Error(f"line {number} holds {type(entry).__name__}, not an object of columns")
        self.fieldnames = list(self.rows[0][1]) if self.rows else []
        self.line_num = 0

    @staticmethod
    def _parse(line: str, number: int):
        try:
            return json.loads(line)
        except ValueError as e:
            raise csv.Error(f"line {number} is not JSON ({e})") from None

    def __iter__(self):
        for number, entry in self.rows:
            self.line_num = number
            yield {key: _text(value, key, number) for key, value in entry.items()}


def _text(value, key: str, number: int) -> str | None:
    """A JSON value as a table cell: strings as they are, null as missing, numbers and booleans as JSON writes
    them; a list or object is no cell (csv.Error naming the line)."""
    if isinstance(value, (list, dict)):
        several = MULTI_LABEL if isinstance(value, list) else ""
        raise csv.Error(f"line {number}: {key!r} holds a JSON {type(value).__name__}, not a string or number{several}")
    return value if isinstance(value, str) or value is None else json.dumps(value)


class FrameRows:
    """The rows of a pandas DataFrame (a Parquet file's) as a ``csv.DictReader``'s: each cell as the CSV that
    ``to_csv`` writes holds it, a missing value (None, NaN) missing; a list (a multi-label cell) is no cell."""

    def __init__(self, frame):
        self.frame, self.fieldnames, self.line_num = frame, [str(c) for c in frame.columns], 0

    def __iter__(self):
        import pandas as pd

        for number, values in enumerate(self.frame.itertuples(index=False), 1):
            self.line_num = number
            row = {}
            for key, value in zip(self.fieldnames, values):
                if not isinstance(value, str) and hasattr(value, "__len__"):
                    raise csv.Error(f"row {number}: {key!r} holds a {type(value).__name__}, not a string or number"
                                    f"{MULTI_LABEL}")
                row[key] = None if pd.isna(value) else str(value)
            yield row


def table_reader(path: Path) -> csv.DictReader | JsonRows | FrameRows:
    """Rows of a CSV, TSV or JSON Lines file (see the module docstring). Raises UnicodeDecodeError for text that
    is not UTF-8, csv.Error for a binary file or malformed JSON."""
    suffix = inner_suffix(path)
    if suffix in PARQUET_SUFFIXES:
        return FrameRows(read_table(path))
    content = read_text_file(path, newline="")  # line ends inside quoted texts kept as written
    if "\0" in content:  # valid UTF-8 yet binary: text never holds NUL
        raise csv.Error("it holds NUL bytes")
    if suffix in (".jsonl", ".json"):
        return JsonRows(content)
    tsv = suffix in (".tsv", ".tab")
    declared = not tsv and comma_separated(path, content[:8192])[0]
    reader = csv.DictReader(io.StringIO(content, newline=""), delimiter="\t" if tsv else ",",
                            quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL)
    if declared:  # through the reader, so that line_num still counts the 'sep=,' line
        next(reader.reader)
    return reader


__all__ = ["TABLE_SUFFIXES", "FrameRows", "JsonRows", "table_reader"]
