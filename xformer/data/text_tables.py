"""Labelled texts as tables: the files ``text_classification`` trains on and ``xformer predict`` classifies.

    .csv                  comma separated, quoted as Excel / pandas write it, a header row
    .tsv / .tab           tab separated, no quoting (GLUE's files), a header row
    .jsonl / .json        JSON Lines (one object per line), or one JSON array of objects: Hugging Face's
                          ``load_dataset("json")`` files; the keys are the columns

Any of them may be compressed as its name says (``reviews.jsonl.gz``, compressed.py). ``table_reader`` gives
the rows of each as ``csv.DictReader`` gives a CSV's: ``fieldnames``, then one dict of strings per row (a JSON
number or boolean as its text: label 1 is "1"; a key a row lacks, or null, is missing: read rows with ``.get``),
and ``line_num``, the line of the row last read.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from .compressed import inner_suffix, read_text_file

TABLE_SUFFIXES = (".csv", ".tsv", ".tab", ".jsonl", ".json")


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
        raise csv.Error(f"line {number}: {key!r} holds a JSON {type(value).__name__}, not a string or number")
    return value if isinstance(value, str) or value is None else json.dumps(value)


def table_reader(path: Path) -> csv.DictReader | JsonRows:
    """Rows of a CSV, TSV or JSON Lines file (see the module docstring). Raises UnicodeDecodeError for text that
    is not UTF-8, csv.Error for a binary file or malformed JSON."""
    suffix = inner_suffix(path)
    content = read_text_file(path, newline="")  # line ends inside quoted texts kept as written
    if "\0" in content:  # valid UTF-8 yet binary: text never holds NUL
        raise csv.Error("it holds NUL bytes")
    if suffix in (".jsonl", ".json"):
        return JsonRows(content)
    tsv = suffix in (".tsv", ".tab")
    return csv.DictReader(io.StringIO(content, newline=""), delimiter="\t" if tsv else ",",
                          quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL)


__all__ = ["TABLE_SUFFIXES", "JsonRows", "table_reader"]
