"""Class predictions for new texts from a text classifier's run folder (data ``text_classification``): its saved
vocabulary (RUN_DIR/tokenizer), the label names and ``max_length`` (RUN_DIR/data.json); each text becomes
[CLS] text [SEP] (a pair: [CLS] a [SEP] b [SEP]), truncated to ``max_length`` as at training. Texts come from
.csv / .tsv / .jsonl files (the run's ``text_column``), pandas DataFrames and Series, other files (one text per
non-empty line) or ``-`` (standard input, by line). ``predict.predict_run`` calls these, with what
``predict.text_classifier_info`` reads of the run.
"""
from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from .config import ConfigError
from .errors import a_or_an, qualified_type
from .metrics_classification import top_classes


def read_texts(inputs: Sequence[str | Path], text_column: str = "text", pair_column: str | None = None,
               given: Callable[[object], bool] | None = None, label_column: str | None = None) -> list[tuple]:
    """(source, text) pairs: the ``text_column`` of .csv / .tsv / .jsonl files ("FILE:ROW", row 1 = the first below
    the header, or a JSON file's first object) and of pandas DataFrames ("row INDEX"; a Series: its texts), the
    non-empty lines of other files ("FILE:LINE"), or of standard input for ``-``. With ``pair_column`` (a
    sentence-pair classifier): (source, text, pair) of tables only. A table or frame that holds ``label_column``
    adds each row's label (None where empty) last: (source, text[, pair], label). An input ``given`` holds true of
    is a text itself, "text N" (N its position among the inputs): fill-mask's texts (predict_fill.py)."""
    import sys

    from .data.compressed import inner_suffix, read_text_file
    from .data.corpus import not_utf8_text
    from .data.text_tables import TABLE_SUFFIXES, table_reader

    texts = []
    for n, item in enumerate(inputs):
        if given is not None and given(item):
            texts.append((f"text {n}", item))
            continue
        if is_frame(item):  # a notebook's texts: a pandas table read as its CSV would be, or a Series of texts
            texts += frame_texts(item, text_column, pair_column, label_column)
            continue
        if not isinstance(item, (str, os.PathLike)):
            raise ConfigError(f"{a_or_an(qualified_type(item))} is not a text; give text files, .csv / .tsv / .jsonl "
                              "files, pandas DataFrames or Series of texts")
        path = Path(item)
        if pair_column is not None and (str(item) == "-" or inner_suffix(path) not in TABLE_SUFFIXES):
            raise ConfigError(f"{item}: the run classifies pairs of texts ({text_column!r}, {pair_column!r}); give "
                              ".csv / .tsv / .jsonl files with both columns")
        if str(item) == "-":
            lines = sys.stdin.read().splitlines()
        elif not path.is_file():
            what = "is a folder" if path.is_dir() else "does not exist"
            raise ConfigError(f"text file {path} {what}; give .csv / .tsv / .jsonl files with a "
                              f"{text_column!r} column, text files (one text per line) or - for standard input")
        else:
            try:
                if inner_suffix(path) in TABLE_SUFFIXES:
                    reader = table_reader(path)
                    columns = [text_column] + ([pair_column] if pair_column else [])
                    for column in columns:
                        if column not in (reader.fieldnames or []):
                            raise ConfigError(f"{path} has no column {column!r} (its header: "
                                              f"{', '.join(reader.fieldnames or []) or 'empty'}); the run reads its "
                                              "texts from that column")
                    labelled = label_column is not None and label_column in (reader.fieldnames or [])
                    texts += [(f"{path}:{i}", *(row.get(c) or "" for c in columns),
                               *([(row.get(label_column) or "").strip() or None] if labelled else []))
                              for i, row in enumerate(reader, 1) if any((v or "").strip() for v in row.values())]
                    continue
                lines = read_text_file(path).splitlines()
            except UnicodeDecodeError as e:
                raise not_utf8_text(path, e) from None
            except csv.Error as e:
                raise ConfigError(f"{path} cannot be read as a table ({e}); give UTF-8 CSV, TSV or JSON Lines "
                                  "files, or text files of one text per line") from None
        source = "-" if str(item) == "-" else str(path)
        texts += [(f"{source}:{i}", line) for i, line in enumerate(lines, 1) if line.strip()]
    if not texts:
        raise ConfigError(f"no text in {', '.join(map(str, inputs))}")
    return texts


def is_frame(item) -> bool:
    """Whether ``item`` is a pandas DataFrame or Series (without importing pandas for a path)."""
    return type(item).__name__ in ("DataFrame", "Series") and type(item).__module__.startswith("pandas")


def frame_texts(frame, text_column: str, pair_column: str | None, label_column: str | None = None) -> list[tuple]:
    """(source "row INDEX", text[, pair][, label]) of a DataFrame's ``text_column`` (and ``pair_column``, and
    ``label_column`` where it has one), or of a Series of texts; an empty cell is the empty text, as in a CSV."""
    import pandas as pd

    if isinstance(frame, pd.Series):
        if pair_column is not None:
            raise ConfigError(f"the run classifies pairs of texts ({text_column!r}, {pair_column!r}); give a "
                              "DataFrame with both columns, not a Series")
        frame = frame.to_frame(text_column)
    columns = [text_column] + ([pair_column] if pair_column else [])
    for column in columns:
        if column not in frame.columns:
            raise ConfigError(f"the frame has no column {column!r} (its columns: "
                              f"{', '.join(map(str, frame.columns)) or 'none'}); the run reads its texts from that "
                              "column")
    rows = [(f"row {index}", *("" if pd.isna(v) else str(v) for v in values))
            for index, values in zip(frame.index, frame[columns].itertuples(index=False))]
    if label_column is None or label_column not in frame.columns:
        return rows
    return [(*row, None if pd.isna(label) or not str(label).strip() else str(label).strip())
            for row, label in zip(rows, frame[label_column])]


@torch.no_grad()
def predict_texts(model: torch.nn.Module, texts: Sequence[tuple[str, str]], info: dict, top_k: int = 5,
                  batch_size: int = 64, device: str | torch.device = "cpu") -> list[dict]:
    """One row per text: {"file" (its source), "text", "class", "probability", "top_k"}, and "label" where the
    text has one (``read_texts``' last field, past the text and its pair). Texts cut to fit ``max_length`` are
    said in one warning."""
    from .data.text_classification import as_class, classification_item, warn_cut
    from .data.text_common import pad_collate

    vocab = info["vocab"]
    model = model.to(device).eval()
    rows, lengths, n_texts = [], [], 2 if info.get("pair_column") else 1
    for start in range(0, len(texts), batch_size):
        chunk = texts[start:start + batch_size]
        ids = vocab.encode_batch([row[1] for row in chunk])
        pairs = vocab.encode_batch([row[2] for row in chunk]) if n_texts == 2 else [None] * len(chunk)
        lengths += [len(a) + (2 if b is None else len(b) + 3) for a, b in zip(ids, pairs)]
        batch = pad_collate([classification_item(vocab, i, info["max_length"], b) for i, b in zip(ids, pairs)],
                            vocab.pad_id)
        logits = model({k: v.to(device) for k, v in batch.items()})["logits"]
        for row, top in zip(chunk, top_classes(logits, info["names"], top_k)):
            label = row[n_texts + 1] if len(row) > n_texts + 1 else None
            if label == "-1" and label not in info["names"]:  # Hugging Face's no-label (GLUE's test splits)
                label = None
            label = label if label is None else as_class(label, info["names"])
            rows.append({"file": row[0], "text": row[1], **({"text_pair": row[2]} if n_texts == 2 else {}),
                         **({"label": label} if label is not None else {}), **top})
    warn_cut(lengths, info["max_length"], "the run reads no more of a text than it was trained on")
    return rows


__all__ = ["read_texts", "is_frame", "frame_texts", "predict_texts"]
