"""Text classification data: ``text_classification`` (rules shared with the other text datasets:
text_common.py).

text_classification
  ``files``: CSV (","), TSV (".tsv" / ".tab": tab, no quoting) or JSON Lines (".jsonl" / ".json",
      Hugging Face's json files) files whose columns (keys) hold ``text_column`` and ``label_column``
      (default "text", "label"), read by text_tables.py; rows of all files pooled.
      Labels: the distinct label strings in sorted order -> ids 0..K-1 (numeric order when every
      label is an integer), or ``labels`` (Hugging Face's label2id as a list: its class names in id
      order; a row labelled otherwise is refused). ``xformer evaluate`` / Python's ``load_run`` give
      other data the run's classes this way, so a held-out file lacking a class is scored, and one
      labelled otherwise is refused. Split: stratified, per label. The run folder gets classes.json.
  Default (files None), sentence-order acceptability: every distinct prose sentence of the corpus
      with ``min_words``..``max_words`` words gives two items:
      label 1, the sentence; label 0, its words shuffled (seeded; the final "." stays last and the
      capital moves to the new first word). Both versions share a split and the same bag of words,
      so only word order separates them: the task needs attention and positions. Balanced.
  Items: [CLS] text [SEP], truncated to max_length. evaluate: accuracy and macro-F1,
      F1_k = 2 TP_k / (2 TP_k + FP_k + FN_k) averaged over the labels present (sklearn's rule).
"""
from __future__ import annotations

import csv
import json
import random
import re
import warnings
from pathlib import Path

import torch
from torch import Tensor

from ..batch import INPUT_IDS, LABELS, TOKEN_TYPE_IDS
from ..errors import ConfigError
from ..metrics_classification import macro_f1, predict
from .compressed import inner_suffix
from .corpus import corpus_name, not_utf8_text, read_text_files
from .registry import DataBundle, register_data
from .text_common import (Items, build_vocab, check_vocab_args, default_task_words, evaluates_only, id_tensor,
                          pad_collate, prose_sentences, save_vocab, seeded_generator, split_indices, text_model_args)
from .tables import PARQUET_SUFFIXES
from .text_tables import table_reader

MISSING_LABELS = ("nan", "NaN", "<NA>")  # what str() of numpy's / pandas' missing values writes: no class names


def read_labelled(paths: str | list[str], text_column: str = "text", label_column: str = "label",
                  pair_column: str | None = None) -> tuple[list, list[str]]:
    """(texts, label strings) of every row of the CSV / TSV / JSON Lines files; with ``pair_column`` each text
    is the pair (text, the pair column's text)."""
    texts, labels = [], []
    for path in map(Path, [paths] if isinstance(paths, (str, Path)) else paths):
        if not path.is_file():
            what = "is a folder" if path.is_dir() else "does not exist"
            raise ConfigError(f"data file {path} {what}; give CSV, TSV or JSON Lines files with columns "
                              f"{text_column!r} and {label_column!r}")
        try:
            rows = _read_rows(path, text_column, label_column, pair_column)
        except UnicodeDecodeError as e:
            raise not_utf8_text(path, e) from None
        except csv.Error as e:  # e.g. a NUL byte (a binary file), malformed JSON
            suffix = inner_suffix(path)
            kind = "JSON Lines" if suffix in (".jsonl", ".json") else "Parquet" if suffix in PARQUET_SUFFIXES else \
                "CSV / TSV"
            files = "Parquet files" if kind == "Parquet" else "UTF-8 text files"
            raise ConfigError(f"{path} cannot be read as {kind} ({e}); give {files} whose rows hold "
                              f"{text_column!r} and {label_column!r}") from None
        for text, label in rows:
            texts.append(text)
            labels.append(label)
    if not texts:
        raise ConfigError(f"{paths}: no rows below the header; give files with labelled texts")
    return texts, labels


def classification_ids(vocab, ids: list[int], max_length: int) -> Tensor:
    """[CLS] text [SEP] of a text's token ids, cut to ``max_length``: the items of training and of predict."""
    return id_tensor([vocab.cls_id] + ids[: max_length - 2] + [vocab.sep_id])


def classification_item(vocab, ids: list[int], max_length: int, pair: list[int] | None = None) -> dict:
    """{input_ids} of [CLS] text [SEP], or, with a ``pair``, {input_ids, token_type_ids} of BERT's
    [CLS] A [SEP] B [SEP] (types 0 up to the first [SEP], 1 after), cut to ``max_length`` as Hugging Face's
    ``truncation="longest_first"`` cuts it: one token at a time from the end of the longer text (of B on a tie)."""
    if pair is None:
        return {INPUT_IDS: classification_ids(vocab, ids, max_length)}
    a, b = list(ids), list(pair)
    while len(a) + len(b) > max_length - 3:
        (a if len(a) > len(b) else b).pop()
    return {INPUT_IDS: id_tensor([vocab.cls_id, *a, vocab.sep_id, *b, vocab.sep_id]),
            TOKEN_TYPE_IDS: id_tensor([0] * (len(a) + 2) + [1] * (len(b) + 1))}


def _read_rows(path: Path, text_column: str, label_column: str, pair_column: str | None = None) -> list[tuple]:
    """(text, label) of every row of one CSV / TSV file with a header, or of a JSON Lines file; with
    ``pair_column``, ((text, pair), label)."""
    reader = table_reader(path)
    columns, rows = reader.fieldnames or [], []
    wanted = (text_column, *([pair_column] if pair_column else []), label_column)
    for column in wanted:
        if column not in columns:
            raise ConfigError(f"{path} has no column {column!r} (its header: {', '.join(columns) or 'empty'}); "
                              f"name the columns {', '.join(map(repr, wanted))} or set data.args.text_column / "
                              f"{'text_pair_column / ' if pair_column else ''}label_column")
    unlabelled = []
    for row in reader:
        if not any((value or "").strip() for value in row.values()):  # ',,': cleared cells Excel still writes
            continue
        values = [row.get(column) for column in wanted]  # a JSON object may lack a key
        for column, value in zip(wanted[:-1], values):
            if value is None:
                raise ConfigError(f"{path}:{reader.line_num}: the row has no {column!r} value; "
                                  f"every row needs {'a text pair' if pair_column else 'a text'} and a label")
        label = (values[-1] or "").strip()
        if not label or label in MISSING_LABELS:
            unlabelled.append((reader.line_num, label))
        rows.append((tuple(values[:2]) if pair_column else values[0], label))
    if unlabelled:
        line, n = unlabelled[0][0], len(unlabelled)
        written = next((f", {label!r} being how pandas writes a missing one" for _, label in unlabelled if label), "")
        raise ConfigError(f"{path}:{line}: the row has no {label_column!r} value ({n} row{'s' if n > 1 else ''} "
                          f"without one{written}); every row needs a label: drop those rows, e.g. "
                          f"df.dropna(subset=[{label_column!r}]) in pandas before writing the file")
    return rows


def label_names(labels: list[str]) -> list[str]:
    """Distinct labels in sorted order (numeric when every label is an integer): the class ids."""
    names = set(labels)
    numeric = all(re.fullmatch(r"[+-]?\d+", n) for n in names)
    return sorted(names, key=int if numeric else None)


def check_class_labels(found: list[str], label_column: str) -> None:
    """The files' labels as classes (``data.args.labels`` left out): numbers that are not whole (scores, as STS-B's)
    are refused, each would become a class of its own; so are several classes in one cell ('sports,politics' beside
    'sports'); labels that differ only in case ('Pos', 'pos') are said, as they stay apart."""
    distinct = list(dict.fromkeys(found))
    scores = [value for value in distinct if _number(value) is not None and not _number(value).is_integer()]
    if scores and all(_number(value) is not None for value in distinct):
        raise ConfigError(f"the {label_column!r} values are numbers such as {scores[:3]}: text_classification learns "
                          f"classes, and each of the {len(distinct)} distinct values would be one (xformer has no "
                          "text regression); give class labels, e.g. scores binned into a few named classes")
    parts = {value: re.split(r"\s*[,;|]\s*", value) for value in distinct}
    holding = {}  # part -> how many labels hold it (a label of one part holds itself)
    for value in distinct:
        for part in set(parts[value]):
            holding[part] = holding.get(part, 0) + 1
    several = [value for value in distinct if len(parts[value]) > 1 and all(holding[p] > 1 for p in parts[value])]
    if several:
        raise ConfigError(f"the {label_column!r} values {several[:3]} look like several classes per text "
                          "(multi-label, Hugging Face's multi_label_classification), but text_classification gives "
                          "each text one class; give one label per row, or list each combination as a class of its "
                          "own in data.args.labels")
    alike: dict[str, list[str]] = {}
    for value in distinct:
        alike.setdefault(value.casefold(), []).append(value)
    if groups := [sorted(group) for group in alike.values() if len(group) > 1]:
        shown = "; ".join(" and ".join(map(repr, group)) for group in groups[:3])
        warnings.warn(f"the {label_column!r} values {shown} differ only in case, so they are different classes; "
                      "write them alike in the file if they are one class", stacklevel=3)


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def warn_cut(lengths: list[int], max_length: int, fix: str) -> None:
    """One warning for the texts whose [CLS] text [SEP] (``lengths``, in tokens) is cut to ``max_length`` by
    ``classification_item``, as Hugging Face's ``truncation=True`` cuts it (which says nothing)."""
    cut = [n for n in lengths if n > max_length]
    if cut:
        warnings.warn(f"{len(cut)} of {len(lengths)} texts are longer than max_length={max_length} tokens (the "
                      f"longest: {max(cut)}, [CLS] and [SEP] included) and were cut to their first {max_length} "
                      f"tokens; {fix}",
                      stacklevel=2)


def given_labels(labels, found: list[str], files, label_column: str) -> tuple[list[str], list[str]]:
    """(``data.args.labels`` as class names in id order, the files' labels as those names: ``as_class``), every
    label of the files among them."""
    if not isinstance(labels, (list, tuple)) or len(set(map(str, labels))) != len(labels):
        raise ConfigError(f"data.args.labels={labels!r} must be a list of distinct class names in id order, e.g. "
                          "[neg, pos]")
    names = [str(name).strip() for name in labels]
    found = [as_class(label, names) for label in found]
    unknown = sorted(set(found) - set(names), key=found.index)
    if unknown:
        shown = unknown if len(unknown) <= 5 else [*unknown[:5], "..."]
        raise ConfigError(f"{files}: the {label_column!r} values {shown} are not among data.args.labels {names} (the "
                          "classes of the model); relabel or drop those rows (when training: add the names to "
                          "data.args.labels), or score the file with xformer predict RUN FILE, which counts a class "
                          "the run lacks wrong")
    return names, found


def as_class(label: str, names: list[str]) -> str:
    """``label`` as one of the classes ``names``: itself, or the class of the same whole number written otherwise
    ("1" for a run's "1.0", as pandas writes a column of whole numbers with a gap, and "1.0" for its "1"), or of
    the same boolean (JSON's "true" for pandas' "True")."""
    if label not in names and label.lower() in ("true", "false"):
        return next((name for name in names if name.lower() == label.lower()), label)
    number = None if label in names else _number(label)
    if number is None or not number.is_integer():
        return label
    return next((name for name in names if _number(name) == number), label)


def shuffle_words(sentence: str, rng: random.Random) -> str | None:
    """The sentence's words in a random different order, final "." kept last, capital on the first word."""
    words = sentence[:-1].split()
    words[0] = words[0][:1].lower() + words[0][1:]
    for _ in range(10):
        shuffled = rng.sample(words, len(words))
        if shuffled != words:
            return shuffled[0][:1].upper() + " ".join(shuffled)[1:] + "."
    return None  # e.g. every word the same


def acceptability(text: str, val_fraction: float, test_fraction: float, seed: int, min_words: int, max_words: int
                  ) -> list[tuple[list[str], list[int]]]:
    """The default task: per split, (texts, labels) with each sentence once as is (1) and once shuffled (0)."""
    sents = [s for s in prose_sentences(text) if min_words <= len(s.split()) <= max_words]
    rng, splits = random.Random(seed), []
    for part in split_indices(len(sents), val_fraction, test_fraction, seeded_generator(seed, 0)):
        texts, labels = [], []
        for i in part:
            shuffled = shuffle_words(sents[i], rng)
            if shuffled is not None:
                texts += [sents[i], shuffled]
                labels += [1, 0]
        splits.append((texts, labels))
    return splits


@register_data("text_classification")
def text_classification(files: str | list[str] | None = None, tokenizer: str = "wordpiece",
                        vocab_size: int | None = None, min_frequency: int | None = None,
                        lowercase: bool | None = None, max_length: int = 128,
                        text_column: str = "text", label_column: str = "label", val_fraction: float = 0.1,
                        test_fraction: float = 0.1, min_words: int | None = None, max_words: int | None = None,
                        seed: int = 0, labels: list[str] | None = None,
                        text_pair_column: str | None = None) -> DataBundle:
    """Classify texts ([CLS] text [SEP]) from CSV / TSV files, or the default sentence-order task.

    labels: the class names in id order (default: the files' distinct labels, sorted; see the module docstring).
    text_pair_column: a second text per row (GLUE's sentence pairs: MRPC, QQP, MNLI, RTE), read with the first as
    [CLS] A [SEP] B [SEP] and token types 0 / 1 (``classification_item``).
    """
    check_vocab_args(vocab_size, min_frequency, max_length)
    min_words, max_words = default_task_words(files, min_words, max_words, (6, 30))
    if max_length < 3:
        raise ConfigError(f"data.args.max_length={max_length} leaves no room for text beside [CLS] and [SEP]")
    if files:
        texts, found = read_labelled(files, text_column, label_column, text_pair_column)
        if labels is None:
            check_class_labels(found, label_column)
            names = label_names(found)
        else:
            names, found = given_labels(labels, found, files, label_column)
        ids = [names.index(label) for label in found]
        per_split = ([], [], [])
        g = seeded_generator(seed, 0)
        for k in range(len(names)):  # stratified: every label split by the same fractions
            members = [i for i, y in enumerate(ids) if y == k]
            for split, chosen in zip(per_split, split_indices(len(members), val_fraction, test_fraction, g)):
                split += [members[j] for j in chosen]
        parts = [([texts[i] for i in sorted(s)], [ids[i] for i in sorted(s)]) for s in per_split]
        most = max(map(ids.count, range(len(names))))
        for name, fraction, part in (("val", val_fraction, parts[1]), ("test", test_fraction, parts[2])):
            if fraction > 0 and not part[0]:  # sklearn's stratified split refuses a test set smaller than the classes
                raise ConfigError(f"data.args.{name}_fraction={fraction} puts no row in the {name} split: the split "
                                  f"is stratified, round(rows of a label x {fraction}) rows of each label, and each "
                                  f"of the {len(names)} labels has too few rows (at most {most}); give a larger "
                                  f"{name}_fraction, more rows, or {name}_fraction=0")
    else:
        columns = {"text_column": (text_column, "text"), "label_column": (label_column, "label")}
        named = [key for key, (value, default) in columns.items() if value != default]
        if labels is not None or text_pair_column is not None or named:
            keys = ", ".join(named + [key for key, value in (("labels", labels), ("text_pair_column", text_pair_column))
                                      if value is not None])
            raise ConfigError(f"data.args.{keys} name the columns or classes of data.args.files; the default task (no "
                              "files) has its own single sentences and classes: leave them out, or give files")
        names = ["shuffled", "sentence"]
        parts = acceptability(read_text_files(None), val_fraction, test_fraction, seed, min_words, max_words)
    if len(names) < 2:
        raise ConfigError(f"the data holds one label only ({names[0]!r}); a classifier needs at least two")
    pairs = text_pair_column is not None
    train_texts = [t for pair in parts[0][0] for t in pair] if pairs else parts[0][0]
    vocab = build_vocab(tokenizer, train_texts, vocab_size, min_frequency, lowercase, "cls", "sep")

    splits, lengths = [], []
    for texts, labels in parts:
        firsts = vocab.encode_batch([t[0] for t in texts] if pairs else texts)
        seconds = vocab.encode_batch([t[1] for t in texts]) if pairs else [None] * len(texts)
        lengths += [len(a) + (2 if b is None else len(b) + 3) for a, b in zip(firsts, seconds)]
        items = [{**classification_item(vocab, a, max_length, b), LABELS: torch.tensor(y)}
                 for a, b, y in zip(firsts, seconds, labels)]
        splits.append(Items(items) if items else None)
    warn_cut(lengths, max_length, "a larger data.args.max_length keeps more of them (and gives the model as many "
             "positions)")
    if splits[0] is None and not evaluates_only(val_fraction, test_fraction):
        raise ConfigError("the training split is empty; give more rows or smaller val/test fractions")

    def evaluate(model, batches) -> dict[str, float]:
        y_true, y_pred = (torch.from_numpy(a) for a in predict(model, batches))
        return {"accuracy": float((y_true == y_pred).float().mean()), "macro_f1": macro_f1(y_true, y_pred)}

    summary = {"corpus": files if files else f"acceptability of {corpus_name()} sentences", "labels": names,
               "tokenizer": vocab.kind, "vocab_size": vocab.vocab_size, "max_length": max_length,
               "items": [len(p[0]) for p in parts]}
    save_text = save_vocab(vocab, summary)

    def save(run_dir: Path) -> None:  # classes.json as image runs write it: what evaluate and init_from compare
        save_text(run_dir)
        Path(run_dir, "classes.json").write_text(json.dumps({"class_names": names}), encoding="utf-8")

    return DataBundle(*splits, collate=lambda items: pad_collate(items, vocab.pad_id), evaluate=evaluate,
                      save=save,
                      model_args=text_model_args(vocab, max_length, n_classes=len(names)))


__all__ = ["text_classification", "read_labelled", "classification_ids", "classification_item", "label_names",
           "given_labels", "as_class", "warn_cut", "shuffle_words", "acceptability", "macro_f1"]
