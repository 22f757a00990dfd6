"""Text datasets for BERT pre-training, fine-tuning and encoder-decoder training over real text.

    text_mlm             masked LM (+ next-sentence prediction)     bert_text tokenizer, masked_lm(_nsp) head
    text_classification  one label per text                          bert_text tokenizer, classification head
    text_seq2seq         source text -> target text                  seq2seq_text tokenizer, causal_lm head

Common rules
  Text: ``files`` (None: the Python reference manual bundled with CPython, see corpus.py).
  Sentences: the text is cut at blank lines into paragraphs (their lines joined by spaces; lines
      that repeat one character, reST heading underlines such as "*****", dropped), and each
      paragraph after ".", "!" or "?" followed by a space and a capital, quote or bracket.
      "Prose" sentences (the default tasks' material) start with a capital, hold a lowercase
      letter, and end with a "." that is their only ".", "!" or "?" (no grammar rules, code, headings).
  Splits: a seeded permutation (``seed``) sends ``val_fraction`` / ``test_fraction`` of the units
      (MLM documents; classification rows, label by label; default-task sentences; seq2seq pairs)
      to val / test, the rest to train.
  Vocabulary (``tokenizer``): "wordpiece" is learned on the train split's text only
      (``vocab_size``, ``min_frequency``, ``lowercase``); a folder is a saved vocabulary, e.g.
      runs/bert_mlm/tokenizer of a pre-training run, which a fine-tuning run must reuse.
      The run folder gets it back as RUN_DIR/tokenizer, with data.json (sizes, labels).
  Batches: right-padded with [PAD] to the longest item; ``attention_mask`` (and ``src_mask``)
      True on real tokens; padded labels are -100 (ignored by the loss).
  model_args: tokenizer vocab_size, max_positions, pad_id (and head n_classes).

text_mlm (Devlin et al. 2019, Sec. 3.1 and A.1)
  Documents: consecutive paragraphs grouped until they hold ``document_chars`` characters; the
      unit of the split, so that no text is shared between splits.
  Segments: a document's sentences packed greedily, in order, into segments of at most L tokens
      (a longer sentence is cut into L-token pieces); segment k + 1 continues segment k.
      Without NSP:  [CLS] A [SEP]                     L = max_length - 2, token types all 0
      With NSP:     [CLS] A [SEP] B [SEP]             L = (max_length - 3) // 2, types 0 for
                    [CLS] A [SEP] and 1 for B [SEP]; one item per segment A that has a successor
                    in its document; with probability 1/2, B = that successor and
                    next_sentence_label = 0 ("is next"), otherwise B = a uniformly drawn segment
                    of the same split other than A and its successor, label 1 ("random").
                    Pairs are drawn once, with a generator seeded from ``seed``.
  Masking (data/mlm.py): 15% of the non-special tokens are targets; 80% become [MASK], 10% a
      random id (any of the vocabulary, as in BERT), 10% stay. Train: a fresh mask per batch in the collate, drawn from torch's
      global RNG (seeded by train.seed, saved in checkpoints, so runs resume exactly).
      Val / test: one mask per item drawn at build time with a seeded generator, so every
      evaluation scores the same positions. Special tokens are never targets.
  evaluate: mlm_accuracy = correct masked predictions / masked tokens; nsp_accuracy with a
      masked_lm_nsp head and nsp data.

text_classification
  ``files``: CSV (",") or TSV (".tsv" / ".tab": tab, no quoting) files with a header holding
      ``text_column`` and ``label_column`` (default "text", "label"); rows of all files pooled.
      Labels: the distinct label strings in sorted order -> ids 0..K-1 (numeric order when every
      label is an integer). Split: stratified, per label.
  Default (files None), sentence-order acceptability: every distinct prose sentence of the corpus
      with ``min_words``..``max_words`` words gives two items:
      label 1, the sentence; label 0, its words shuffled (seeded; the final "." stays last and the
      capital moves to the new first word). Both versions share a split and the same bag of words,
      so only word order separates them: the task needs attention and positions. Balanced.
  Items: [CLS] text [SEP], truncated to max_length. evaluate: accuracy and macro-F1,
      F1_k = 2 TP_k / (2 TP_k + FP_k + FN_k) averaged over the labels present (sklearn's rule).

text_seq2seq
  ``files``: text files of ``source<TAB>target`` lines (no header; blank lines skipped).
  Default (files None), word reversal: each distinct prose sentence of the corpus is cut into
      consecutive pieces of ``max_words`` words (a last piece of fewer than ``min_words`` words
      is dropped); source = the piece, target = its words in reverse order
      ("the value is used." -> "used. is value the").
  Items: src_ids = source (no specials), input_ids = [BOS] target, labels = target [EOS]; each
      side truncated to max_length tokens. evaluate: greedy decoding through the KV cache from
      [BOS] alone, stopping at [EOS]; token_accuracy over the target tokens and [EOS], exact_match
      over whole targets.
"""
from __future__ import annotations

import csv
import io
import json
import random
import re
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..config import ConfigError
from ..generation.decoding import greedy
from ..heads.lm import IGNORE_INDEX
from ..metrics_classification import predict
from ..registry import check_min_max, check_sizes
from .corpus import corpus_name, not_utf8_text, read_text_files
from .mlm import mask_tokens
from .registry import DataBundle, register_data
from .text import paragraphs
from .vocab import SPECIAL_TOKENS, Vocab, make_vocab

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(\[])")
PROSE = re.compile(r"[A-Z][^.!?]*[a-z][^.!?]*\.")  # a capital, a lowercase letter, one final "."


# ---------------------------------------------------------------- shared pieces


def sentences(paragraph: str) -> list[str]:
    return [s for s in SENTENCE_END.split(paragraph) if s]


def prose_sentences(text: str) -> list[str]:
    """Distinct prose sentences (capital first, one final "." and no other), in order of first appearance."""
    found = (s for p in paragraphs(text) for s in sentences(p) if PROSE.fullmatch(s))
    return list(dict.fromkeys(found))


def split_indices(n: int, val_fraction: float, test_fraction: float, seed: int | torch.Generator
                  ) -> tuple[list[int], list[int], list[int]]:
    """Sorted (train, val, test) indices of n units: a seeded permutation, val first, then test."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(f"data.args.val_fraction={val_fraction} and test_fraction={test_fraction} must be in "
                          "[0, 1) and leave a training part")
    g = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=g).tolist()
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    return sorted(order[n_val + n_test:]), sorted(order[:n_val]), sorted(order[n_val: n_val + n_test])


def _check_vocab_args(vocab_size: int, min_frequency: int, max_length: int) -> None:
    check_sizes("data.args", vocab_size=vocab_size, max_length=max_length)
    check_sizes("data.args", minimum=0, min_frequency=min_frequency)


def _generator(seed: int, part: int) -> torch.Generator:
    """Independent seeded streams for the split permutation (part 0) and each split's draws."""
    return torch.Generator().manual_seed(1000 * seed + part)


def build_vocab(tokenizer: str, train_texts: list[str], vocab_size: int, min_frequency: int, lowercase: bool,
                *roles: str) -> Vocab:
    """WordPiece (or characters) learned on the train split's text, or the vocabulary saved in a folder."""
    if tokenizer in ("wordpiece", "char") and not train_texts:
        raise ConfigError("the training split holds no text; give more text or smaller val/test fractions")
    vocab = make_vocab(tokenizer, "\n".join(train_texts), vocab_size, min_frequency, lowercase,
                       char_specials=SPECIAL_TOKENS)
    vocab.require("pad", *roles)
    return vocab


class Items(Dataset):
    """A list of items, each a dict of 1-D id tensors and scalars."""

    def __init__(self, items: list[dict]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def _ids(ids: list[int]) -> Tensor:
    return torch.tensor(ids, dtype=torch.long)


def pad_collate(items: list[dict], pad_id: int) -> dict[str, Tensor]:
    """Stack scalars; right-pad sequences to the longest ([PAD] for ids, -100 for labels, 0 for token
    types); add a boolean mask (True = real token) for input_ids and src_ids."""
    batch = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if values[0].dim() == 0:
            batch[key] = torch.stack(values)
            continue
        fill = IGNORE_INDEX if key == "labels" else 0 if key == "token_type_ids" else pad_id
        batch[key] = torch.nn.utils.rnn.pad_sequence(values, batch_first=True, padding_value=fill)
        mask_key = {"input_ids": "attention_mask", "src_ids": "src_mask"}.get(key)
        if mask_key:
            lengths = torch.tensor([len(v) for v in values])
            batch[mask_key] = torch.arange(batch[key].shape[1])[None] < lengths[:, None]
    return batch


def _save(vocab: Vocab, summary: dict):
    def save(run_dir: Path) -> None:
        vocab.save(Path(run_dir) / "tokenizer")
        Path(run_dir, "data.json").write_text(json.dumps(summary, indent=1))
    return save


def _model_args(vocab: Vocab, max_positions: int, **head) -> dict:
    return {"tokenizer": {"vocab_size": vocab.vocab_size, "max_positions": max_positions, "pad_id": vocab.pad_id},
            "head": head}


# ---------------------------------------------------------------- text_mlm


def documents(text: str, document_chars: int) -> list[list[str]]:
    """Consecutive paragraphs grouped until each group holds ``document_chars`` characters; its sentences."""
    docs, current, size = [], [], 0
    for p in paragraphs(text):
        current += sentences(p)
        size += len(p)
        if size >= document_chars:
            docs.append(current)
            current, size = [], 0
    if current:
        docs.append(current)
    return docs


def pack_segments(docs: list[list[list[int]]], budget: int) -> tuple[list[list[int]], list[int]]:
    """Each document's sentence ids packed in order into segments of <= budget tokens; (segments, document)."""
    segments, owner = [], []
    for d, sents in enumerate(docs):
        current = []
        for ids in sents:
            for start in range(0, len(ids), budget):  # a sentence longer than the budget is cut
                piece = ids[start: start + budget]
                if current and len(current) + len(piece) > budget:
                    segments.append(current)
                    owner.append(d)
                    current = []
                current = current + piece
        if current:
            segments.append(current)
            owner.append(d)
    return segments, owner


def mlm_items(segments: list[list[int]], owner: list[int], vocab: Vocab, nsp: bool, g: torch.Generator
              ) -> list[dict]:
    cls, sep = [vocab.cls_id], [vocab.sep_id]
    if not nsp:
        return [{"input_ids": _ids(cls + s + sep), "token_type_ids": torch.zeros(len(s) + 2, dtype=torch.long)}
                for s in segments]
    n, items = len(segments), []
    if n < 3:
        raise ConfigError(f"next-sentence prediction needs at least 3 segments in each split, got {n}; "
                          "give more text or set data.args.nsp=false")
    for k in range(n - 1):
        if owner[k + 1] != owner[k]:
            continue  # the last segment of a document has no successor to pair with
        if torch.rand((), generator=g) < 0.5:
            b, label = k + 1, 0
        else:  # uniform over the n - 2 segments other than k and k + 1
            r = int(torch.randint(n - 2, (), generator=g))
            b, label = (r if r < k else r + 2), 1
        a, bb = segments[k], segments[b]
        items.append({"input_ids": _ids(cls + a + sep + bb + sep),
                      "token_type_ids": _ids([0] * (len(a) + 2) + [1] * (len(bb) + 1)),
                      "next_sentence_label": torch.tensor(label)})
    return items


def fix_masks(items: list[dict], vocab: Vocab, g: torch.Generator) -> None:
    """Give each evaluation item one mask for good (input_ids masked, labels), drawn from ``g``."""
    for item in items:
        item["input_ids"], item["labels"] = mask_tokens(item["input_ids"], vocab.mask_id, vocab.vocab_size,
                                                        vocab.special_ids, generator=g)


@register_data("text_mlm")
def text_mlm(files: str | list[str] | None = None, tokenizer: str = "wordpiece", vocab_size: int = 8000,
             min_frequency: int = 2, lowercase: bool = True, max_length: int = 128, nsp: bool = False,
             document_chars: int = 2000, val_fraction: float = 0.1, test_fraction: float = 0.0,
             seed: int = 0) -> DataBundle:
    """BERT pre-training data: masked LM on packed sentence segments, optionally with next-sentence pairs."""
    _check_vocab_args(vocab_size, min_frequency, max_length)
    check_sizes("data.args", document_chars=document_chars)
    if max_length < (7 if nsp else 3):
        raise ConfigError(f"data.args.max_length={max_length} leaves no room for text beside [CLS]/[SEP]")
    text = read_text_files(files)
    docs = documents(text, document_chars)
    parts = split_indices(len(docs), val_fraction, test_fraction, _generator(seed, 0))
    vocab = build_vocab(tokenizer, [s for i in parts[0] for s in docs[i]], vocab_size, min_frequency, lowercase,
                        "cls", "sep", "mask")
    budget = (max_length - 3) // 2 if nsp else max_length - 2

    splits = []
    for k, part in enumerate(parts):
        sents = [docs[i] for i in part]
        flat = vocab.encode_batch([s for doc in sents for s in doc])
        ids, start = [], 0
        for doc in sents:  # back into documents of sentence ids
            ids.append(flat[start: start + len(doc)])
            start += len(doc)
        g = _generator(seed, k + 1)
        items = mlm_items(*pack_segments(ids, budget), vocab, nsp, g) if part else []
        if k > 0:
            fix_masks(items, vocab, g)
        splits.append(Items(items) if items else None)
    if splits[0] is None:
        raise ConfigError("the training split holds no segment; give more text or smaller val/test fractions")

    def collate(items: list[dict]) -> dict[str, Tensor]:
        batch = pad_collate(items, vocab.pad_id)
        if "labels" not in batch:  # training: a fresh mask for every batch ([PAD] is special: never masked)
            batch["input_ids"], batch["labels"] = mask_tokens(batch["input_ids"], vocab.mask_id, vocab.vocab_size,
                                                              vocab.special_ids)
        return batch

    def evaluate(model, batches) -> dict[str, float]:
        correct = total = nsp_correct = nsp_total = 0
        for batch in batches:
            out = model(batch)
            scored = batch["labels"] != IGNORE_INDEX
            correct += int(((out["logits"].argmax(-1) == batch["labels"]) & scored).sum())
            total += int(scored.sum())
            if "nsp_logits" in out and "next_sentence_label" in batch:
                nsp_correct += int((out["nsp_logits"].argmax(-1) == batch["next_sentence_label"]).sum())
                nsp_total += len(batch["next_sentence_label"])
        metrics = {"mlm_accuracy": correct / max(total, 1)}
        if nsp_total:
            metrics["nsp_accuracy"] = nsp_correct / nsp_total
        return metrics

    summary = {"corpus": files if files else corpus_name(), "tokenizer": vocab.kind, "vocab_size": vocab.vocab_size,
               "max_length": max_length, "nsp": nsp, "documents": [len(p) for p in parts],
               "items": [len(s) if s is not None else 0 for s in splits]}
    return DataBundle(*splits, collate=collate, evaluate=evaluate, save=_save(vocab, summary),
                      model_args=_model_args(vocab, max_length))


# ---------------------------------------------------------------- text_classification


def read_labelled(paths: str | list[str], text_column: str = "text", label_column: str = "label"
                  ) -> tuple[list[str], list[str]]:
    """(texts, label strings) of every row of the CSV / TSV files."""
    texts, labels = [], []
    for path in map(Path, [paths] if isinstance(paths, (str, Path)) else paths):
        if not path.is_file():
            raise ConfigError(f"data file {path} does not exist; give CSV or TSV files with columns "
                              f"{text_column!r} and {label_column!r}")
        try:
            rows = _read_rows(path, text_column, label_column)
        except UnicodeDecodeError as e:
            raise not_utf8_text(path, e) from None
        except csv.Error as e:  # e.g. a NUL byte: a binary file
            raise ConfigError(f"{path} cannot be read as CSV / TSV ({e}); give UTF-8 text files with a header row "
                              f"holding {text_column!r} and {label_column!r}") from None
        for text, label in rows:
            texts.append(text)
            labels.append(label)
    if not texts:
        raise ConfigError(f"{paths}: no rows below the header; give files with labelled texts")
    return texts, labels


def _read_rows(path: Path, text_column: str, label_column: str) -> list[tuple[str, str]]:
    """(text, label) of every row of one CSV / TSV file with a header."""
    tsv = path.suffix.lower() in (".tsv", ".tab")
    with open(path, newline="", encoding="utf-8") as f:  # newline="": line ends inside quoted texts kept as written
        content = f.read()
    if "\0" in content:  # valid UTF-8 yet binary: text never holds NUL
        raise csv.Error("it holds NUL bytes")
    reader = csv.DictReader(io.StringIO(content, newline=""), delimiter="\t" if tsv else ",",
                            quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL)
    columns, rows = reader.fieldnames or [], []
    for column in (text_column, label_column):
        if column not in columns:
            raise ConfigError(f"{path} has no column {column!r} (its header: {', '.join(columns) or 'empty'}); "
                              f"name the columns {text_column!r} and {label_column!r} or set "
                              "data.args.text_column / data.args.label_column")
    for row in reader:
        text, label = row[text_column], row[label_column]
        if text is None or label is None or not label.strip():
            raise ConfigError(f"{path}:{reader.line_num}: the row has no {label_column!r} value; "
                              "every row needs a text and a label")
        rows.append((text, label.strip()))
    return rows


def label_names(labels: list[str]) -> list[str]:
    """Distinct labels in sorted order (numeric when every label is an integer): the class ids."""
    names = set(labels)
    numeric = all(re.fullmatch(r"[+-]?\d+", n) for n in names)
    return sorted(names, key=int if numeric else None)


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
    for part in split_indices(len(sents), val_fraction, test_fraction, _generator(seed, 0)):
        texts, labels = [], []
        for i in part:
            shuffled = shuffle_words(sents[i], rng)
            if shuffled is not None:
                texts += [sents[i], shuffled]
                labels += [1, 0]
        splits.append((texts, labels))
    return splits


def macro_f1(y_true: Tensor, y_pred: Tensor) -> float:
    """Mean over the labels present in y_true or y_pred of F1_k = 2 TP / (2 TP + FP + FN)."""
    scores = []
    for k in torch.unique(torch.cat([y_true, y_pred])):
        tp = int(((y_pred == k) & (y_true == k)).sum())
        wrong = int(((y_pred == k) != (y_true == k)).sum())  # FP + FN
        scores.append(2 * tp / (2 * tp + wrong))
    return sum(scores) / max(len(scores), 1)


@register_data("text_classification")
def text_classification(files: str | list[str] | None = None, tokenizer: str = "wordpiece", vocab_size: int = 8000,
                        min_frequency: int = 2, lowercase: bool = True, max_length: int = 128,
                        text_column: str = "text", label_column: str = "label", val_fraction: float = 0.1,
                        test_fraction: float = 0.1, min_words: int = 6, max_words: int = 30,
                        seed: int = 0) -> DataBundle:
    """Classify texts ([CLS] text [SEP]) from CSV / TSV files, or the default sentence-order task."""
    _check_vocab_args(vocab_size, min_frequency, max_length)
    check_min_max("data.args", "min_words", min_words, "max_words", max_words)
    if max_length < 3:
        raise ConfigError(f"data.args.max_length={max_length} leaves no room for text beside [CLS] and [SEP]")
    if files:
        texts, labels = read_labelled(files, text_column, label_column)
        names = label_names(labels)
        ids = [names.index(label) for label in labels]
        per_split = ([], [], [])
        g = _generator(seed, 0)
        for k in range(len(names)):  # stratified: every label split by the same fractions
            members = [i for i, y in enumerate(ids) if y == k]
            for split, chosen in zip(per_split, split_indices(len(members), val_fraction, test_fraction, g)):
                split += [members[j] for j in chosen]
        parts = [([texts[i] for i in sorted(s)], [ids[i] for i in sorted(s)]) for s in per_split]
    else:
        names = ["shuffled", "sentence"]
        parts = acceptability(read_text_files(None), val_fraction, test_fraction, seed, min_words, max_words)
    if len(names) < 2:
        raise ConfigError(f"the data holds one label only ({names[0]!r}); a classifier needs at least two")
    vocab = build_vocab(tokenizer, parts[0][0], vocab_size, min_frequency, lowercase, "cls", "sep")

    splits = []
    for texts, labels in parts:
        items = [{"input_ids": _ids([vocab.cls_id] + ids[: max_length - 2] + [vocab.sep_id]),
                  "labels": torch.tensor(y)} for ids, y in zip(vocab.encode_batch(texts), labels)]
        splits.append(Items(items) if items else None)
    if splits[0] is None:
        raise ConfigError("the training split is empty; give more rows or smaller val/test fractions")

    def evaluate(model, batches) -> dict[str, float]:
        y_true, y_pred = (torch.from_numpy(a) for a in predict(model, batches))
        return {"accuracy": float((y_true == y_pred).float().mean()), "macro_f1": macro_f1(y_true, y_pred)}

    summary = {"corpus": files if files else f"acceptability of {corpus_name()} sentences", "labels": names,
               "tokenizer": vocab.kind, "vocab_size": vocab.vocab_size, "max_length": max_length,
               "items": [len(p[0]) for p in parts]}
    return DataBundle(*splits, collate=lambda items: pad_collate(items, vocab.pad_id), evaluate=evaluate,
                      save=_save(vocab, summary), model_args=_model_args(vocab, max_length, n_classes=len(names)))


# ---------------------------------------------------------------- text_seq2seq


def read_pairs(paths: str | list[str]) -> list[tuple[str, str]]:
    """(source, target) of every ``source<TAB>target`` line."""
    pairs = []
    for path in map(Path, [paths] if isinstance(paths, (str, Path)) else paths):
        text = read_text_files(path)
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            if "\t" not in line:
                raise ConfigError(f"{path}:{number}: no tab in the line; each line must be source<TAB>target")
            source, target = line.split("\t", 1)
            pairs.append((source.strip(), target.strip()))
    return pairs


def reversal_pairs(text: str, min_words: int, max_words: int) -> list[tuple[str, str]]:
    """The default task: prose sentences cut into pieces of max_words words, each -> its words reversed."""
    pairs = []
    for s in prose_sentences(text):
        words = s.split()
        for start in range(0, len(words), max_words):
            piece = words[start: start + max_words]
            if len(piece) >= min_words:
                pairs.append((" ".join(piece), " ".join(reversed(piece))))
    return list(dict.fromkeys(pairs))


@register_data("text_seq2seq")
def text_seq2seq(files: str | list[str] | None = None, tokenizer: str = "wordpiece", vocab_size: int = 8000,
                 min_frequency: int = 2, lowercase: bool = True, max_length: int = 64, val_fraction: float = 0.1,
                 test_fraction: float = 0.1, min_words: int = 3, max_words: int = 8, seed: int = 0) -> DataBundle:
    """Teacher-forced encoder-decoder pairs from TSV files, or the default word-reversal task."""
    _check_vocab_args(vocab_size, min_frequency, max_length)
    check_min_max("data.args", "min_words", min_words, "max_words", max_words)
    pairs = read_pairs(files) if files else reversal_pairs(read_text_files(None), min_words, max_words)
    parts = [[pairs[i] for i in part] for part in split_indices(len(pairs), val_fraction, test_fraction,
                                                               _generator(seed, 0))]
    vocab = build_vocab(tokenizer, [t for pair in parts[0] for t in pair], vocab_size, min_frequency, lowercase,
                        "bos", "eos")
    bos, eos = vocab.bos_id, vocab.eos_id

    splits = []
    for part in parts:
        sources, targets = vocab.encode_batch([p[0] for p in part]), vocab.encode_batch([p[1] for p in part])
        items = [{"src_ids": _ids(s[:max_length] or [vocab.pad_id]),  # an empty source still needs one token
                  "input_ids": _ids([bos] + t[:max_length]), "labels": _ids(t[:max_length] + [eos])}
                 for s, t in zip(sources, targets)]
        splits.append(Items(items) if items else None)
    if splits[0] is None:
        raise ConfigError("the training split is empty; give more pairs or smaller val/test fractions")

    def evaluate(model, batches) -> dict[str, float]:
        correct = total = exact = rows = 0
        for batch in batches:
            labels = batch["labels"]
            prompt = {"src_ids": batch["src_ids"], "src_mask": batch["src_mask"],
                      "input_ids": torch.full((len(labels), 1), bos, device=labels.device)}
            predicted = greedy(model, prompt, max_new_tokens=labels.shape[1], eos_id=eos)
            # rows that all stopped early come back shorter: pad with a value no label holds
            predicted = torch.nn.functional.pad(predicted, (0, labels.shape[1] - predicted.shape[1]), value=-1)
            real = labels != IGNORE_INDEX
            hit = (predicted == labels) & real
            correct, total = correct + int(hit.sum()), total + int(real.sum())
            exact, rows = exact + int((hit | ~real).all(1).sum()), rows + len(labels)
        return {"token_accuracy": correct / max(total, 1), "exact_match": exact / max(rows, 1)}

    summary = {"corpus": files if files else f"word reversal of {corpus_name()} sentences", "tokenizer": vocab.kind,
               "vocab_size": vocab.vocab_size, "max_length": max_length, "items": [len(p) for p in parts]}
    return DataBundle(*splits, collate=lambda items: pad_collate(items, vocab.pad_id), evaluate=evaluate,
                      save=_save(vocab, summary), model_args=_model_args(vocab, max_length + 1))


__all__ = ["text_mlm", "text_classification", "text_seq2seq", "paragraphs", "sentences", "prose_sentences",
           "split_indices", "pad_collate", "documents", "pack_segments", "read_labelled", "label_names",
           "macro_f1", "read_pairs", "reversal_pairs"]
