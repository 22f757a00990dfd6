"""Corpora larger than memory: token files written once, read through ``np.memmap`` (``token_file``).

A prepared folder (``python data/shakespeare_char/prepare.py``, ``data/wordpiece_corpus/prepare.py``,
see data/README.md) holds, as nanoGPT's ``data/*/prepare.py`` writes them:

    train.bin  val.bin  [test.bin]   the token stream cut by position, raw little-endian uint16
                                     (a vocabulary of at most 65,536 ids) or uint32, no header
    meta.json                        dtype, vocab_size, tokenizer kind, tokens and characters per split
    tokenizer/                       the saved vocabulary (``load_vocab``; the run copies it, so
                                     ``xformer generate`` reads text back)

The three files are consecutive parts of one stream: val.bin continues train.bin, test.bin val.bin.
An evaluation folder has no train.bin: a held-out text written with a run's own vocabulary (``prepare.py HELD.txt
--tokenizer RUN/tokenizer --val-fraction 1``), scored whole by ``xformer evaluate RUN data.args.path=FOLDER``.

Reading never loads a file. Each item maps the B + 1 tokens it needs (``np.memmap`` with an
offset), copies them into a tensor and drops the mapping, so memory stays flat whatever the
corpus size (the file's pages stay in the OS page cache, outside the process) and the dataset
pickles as a path: DataLoader workers open the file themselves.

Windows, as ``text_lm`` (text.py) cuts them from one in-memory stream:
  train: input x[i : i+B], labels x[i+1 : i+B+1]. With at most ``max_windows`` offsets every offset
      is an item (exactly text_lm's windows). A larger file is cut into ``max_windows`` equal
      stretches of offsets and item k is one offset inside stretch k, at a position drawn from
      (``seed``, k): an epoch samples the whole file evenly, and the sampler's permutation of the
      items stays ``max_windows`` long instead of one entry per token. Epochs repeat those offsets.
  val / test: every token of the file scored exactly once, the first one with the end of the
      previous file as context (text_lm's rule), so ``val_loss`` is the file's exact mean CE. Without
      train.bin the first one is read after [EOS], or without one is context only, as in text_lm.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..batch import INPUT_IDS, LABELS
from ..config import ConfigError
from ..heads.lm import IGNORE_INDEX
from ..metrics_text import bits_per_character, bits_per_token, perplexity
from ..registry import check_sizes
from .registry import DataBundle, register_data
from .text import paragraphs, split_points
from .vocab import CharVocab, Vocab, load_vocab, make_vocab

META_FILE = "meta.json"
TOKENIZER_DIR = "tokenizer"
SPLITS = ("train", "val", "test")
DTYPES = {"uint16": np.uint16, "uint32": np.uint32}
FIX = "prepare the folder again (see data/README.md)"
LINE_START = re.compile(r"\n(?=[^\W_])")  # the line break of a line that starts with a letter or digit


def token_dtype(vocab_size: int) -> str:
    """uint16 when every id fits (nanoGPT's choice for GPT-2's 50,257), else uint32."""
    return "uint16" if vocab_size <= 2 ** 16 else "uint32"


# ---------------------------------------------------------------- writing


class TokenWriter:
    """Appends ids to ``path`` as raw ``dtype`` values, chunk by chunk (nothing is kept in memory)."""

    def __init__(self, path: str | Path, dtype: str):
        self.path, self.dtype, self.count = Path(path), np.dtype(DTYPES[dtype]), 0
        self.file = open(self.path, "wb")

    def write(self, ids) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() > np.iinfo(self.dtype).max):
            raise ValueError(f"token id {int(ids.max())} does not fit {self.dtype.name}")
        self.file.write(ids.astype(self.dtype).tobytes())
        self.count += int(ids.size)

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> TokenWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_meta(folder: str | Path, vocab: Vocab, dtype: str, tokens: dict, characters: dict | None = None,
               **extra) -> dict:
    """Save ``vocab`` in folder/tokenizer and write folder/meta.json; returns the meta."""
    folder = Path(folder)
    vocab.save(folder / TOKENIZER_DIR)
    meta = {"dtype": dtype, "vocab_size": vocab.vocab_size, "tokenizer": vocab.kind, "tokens": tokens}
    if characters is not None:
        meta["characters"] = characters
    if vocab.kind == "char":  # readable at a glance, as nanoGPT's meta.pkl itos
        meta["chars"] = "".join(vocab.itos[len(vocab.specials):])
    meta.update(extra)
    (folder / META_FILE).write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")
    return meta


def encoded_chunks(vocab: Vocab, text: str, chars: int = 1 << 20, paragraphs_per_chunk: int = 10_000):
    """``encode_stream(vocab, text)`` (text.py) in pieces:

    characters          ``chars`` at a time;
    another vocabulary  about ``chars`` at a time, cut just before the line break of a line that starts with a
    that keeps the      letter or digit: never inside a word, nor before a special token such as <|endoftext|>;
    layout              GPT-2's byte-level pre-tokeniser makes that line break a piece of its own and the
                        whitespace before it another, so the ids are those of the whole text;
    WordPiece           ``paragraphs_per_chunk`` paragraphs at a time, [EOS] after each paragraph."""
    if isinstance(vocab, CharVocab):
        for lo in range(0, len(text), chars):
            yield vocab.encode(text[lo:lo + chars])
        return
    if vocab.keeps_whitespace:
        lo = 0
        while lo < len(text):
            cut = LINE_START.search(text, lo + chars) if lo + chars < len(text) else None
            hi = cut.start() if cut else len(text)
            yield vocab.encode(text[lo:hi])
            lo = hi
        return
    vocab.require("eos")
    found = paragraphs(text)
    for lo in range(0, len(found), paragraphs_per_chunk):
        ids = []
        for piece_ids in vocab.encode_batch(found[lo:lo + paragraphs_per_chunk]):
            ids += piece_ids + [vocab.eos_id]
        yield ids


def write_text_corpus(folder: str | Path, text: str, tokenizer: str = "char", vocab_size: int | None = None,
                      min_frequency: int | None = None, lowercase: bool | None = None, val_fraction: float = 0.1,
                      test_fraction: float = 0.0, **extra) -> dict:
    """Tokenise ``text`` as ``text_lm`` does (same vocabulary, same cuts, same ids) and write its parts
    to folder/{train,val,test}.bin with meta.json and tokenizer/; returns the meta. Fractions summing to 1 write
    an evaluation folder (no train.bin) of a text to score a run on, read with the run's saved vocabulary.

    tokenizer: "char" (every character of the whole text), "wordpiece" (learned on the train part)
    or a folder holding a saved vocabulary. The ids go to disk chunk by chunk; the text itself is
    held in memory once."""
    if not (0 <= val_fraction <= 1 and 0 <= test_fraction <= 1 and val_fraction + test_fraction <= 1):
        raise ConfigError(f"val_fraction={val_fraction} and test_fraction={test_fraction} must be in [0, 1] and sum "
                          "to at most 1 (below 1 leaves a training part; 1 writes an evaluation folder, no train.bin)")
    if val_fraction + test_fraction == 1 and tokenizer in ("char", "wordpiece"):
        raise ConfigError("an evaluation folder (val_fraction + test_fraction = 1, no train.bin) is scored by a "
                          "trained run and must hold its ids: give the run's vocabulary, --tokenizer RUN/tokenizer")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    learning = {"vocab_size": vocab_size, "min_frequency": min_frequency, "lowercase": lowercase}
    vocab = None if tokenizer == "wordpiece" else make_vocab(tokenizer, text, **learning)
    bounds = split_points(text, val_fraction, test_fraction, snap_to_lines=not isinstance(vocab, CharVocab))
    parts = [text[bounds[i]: bounds[i + 1]] for i in range(3)]
    if vocab is None:
        vocab = make_vocab("wordpiece", parts[0], **learning)
    dtype = token_dtype(vocab.vocab_size)
    tokens = {}
    for split, part in zip(SPLITS, parts):
        path = folder / f"{split}.bin"
        path.unlink(missing_ok=True)  # a file of an earlier preparation must not outlive its meta.json
        if not part:
            continue
        with TokenWriter(path, dtype) as writer:
            for ids in encoded_chunks(vocab, part):
                writer.write(ids)
        tokens[split] = writer.count
    if not tokens:
        raise ConfigError("the text holds no tokens; give a text with some")
    characters = {split: len(part) for split, part in zip(SPLITS, parts) if split in tokens}
    return write_meta(folder, vocab, dtype, tokens, characters, **extra)


# ---------------------------------------------------------------- reading


class TokenFile:
    """One .bin file from token ``start`` on: ``len`` tokens, ``read(lo, hi)`` maps only the bytes of tokens
    [lo, hi) and returns int64."""

    def __init__(self, path: Path, dtype: str, n: int, start: int = 0):
        self.path, self.dtype, self.n, self.start = str(path), np.dtype(DTYPES[dtype]), n - start, start

    def __len__(self) -> int:
        return self.n

    def read(self, lo: int, hi: int) -> np.ndarray:
        if hi <= lo:
            return np.zeros(0, dtype=np.int64)
        mapped = np.memmap(self.path, dtype=self.dtype, mode="r", offset=(self.start + lo) * self.dtype.itemsize,
                           shape=(hi - lo,))
        out = mapped.astype(np.int64)  # a copy: the mapping goes with ``mapped``
        del mapped
        return out


def read_meta(folder: str | Path) -> dict:
    """meta.json of a prepared folder, checked against the files beside it (one-line errors)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"token_file: {folder} is not a folder; prepare one first, e.g. python "
                          "data/shakespeare_char/prepare.py (see data/README.md)")
    path = folder / META_FILE
    if not path.is_file():
        raise ConfigError(f"token_file: {path} is missing; {FIX}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        dtype, vocab_size, tokens = meta["dtype"], meta["vocab_size"], meta["tokens"]
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"token_file: {path} is not a token folder's meta.json ({type(e).__name__}: {e}); "
                          f"{FIX}") from None
    if dtype not in DTYPES:
        raise ConfigError(f"token_file: {path} gives dtype {dtype!r}; token files are uint16 or uint32; {FIX}")
    if not isinstance(vocab_size, int) or not 0 < vocab_size <= np.iinfo(DTYPES[dtype]).max + 1:
        raise ConfigError(f"token_file: {path} gives vocab_size {vocab_size!r}, which {dtype} ids cannot hold; "
                          f"{FIX}")
    itemsize = np.dtype(DTYPES[dtype]).itemsize
    if not isinstance(tokens, dict) or not any(tokens.get(split) for split in SPLITS):
        raise ConfigError(f"token_file: {folder} holds no tokens ({META_FILE} counts none); prepare it from a text "
                          "with some (see data/README.md)")
    for split, count in tokens.items():
        file = folder / f"{split}.bin"
        if split not in SPLITS or not count:
            continue
        if not file.is_file():
            raise ConfigError(f"token_file: {file} is missing ({path} counts {count} {split} tokens); {FIX}")
        size = file.stat().st_size
        if size != count * itemsize:
            raise ConfigError(f"token_file: {file} holds {size} bytes, not the {count} {dtype} tokens "
                              f"({count * itemsize} bytes) {META_FILE} counts; {FIX}")
    return meta


def token_files(folder: str | Path) -> tuple[dict, dict[str, TokenFile]]:
    """(meta, {split: TokenFile}) for the splits the folder holds."""
    meta = read_meta(folder)
    files = {s: TokenFile(Path(folder) / f"{s}.bin", meta["dtype"], int(meta["tokens"][s]))
             for s in SPLITS if meta["tokens"].get(s)}
    return meta, files


def _mix(seed: int, k: int) -> int:
    """splitmix64 of (seed, k): a well-spread 64-bit number, the same in every process."""
    z = (seed * 0x9E3779B97F4A7C15 + (k + 1) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


class FileTrainWindows(Dataset):
    """Training windows of one token file (see the module docstring): every offset, or one per stretch."""

    def __init__(self, file: TokenFile, block_size: int, max_windows: int, seed: int = 0):
        self.file, self.block_size, self.seed = file, block_size, seed
        self.offsets = len(file) - block_size
        self.count = min(self.offsets, max_windows)

    def __len__(self) -> int:
        return self.count

    def offset(self, k: int) -> int:
        if self.count == self.offsets:
            return k
        lo, hi = k * self.offsets // self.count, (k + 1) * self.offsets // self.count
        return lo + _mix(self.seed, k) % (hi - lo)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        if not 0 <= k < self.count:
            raise IndexError(k)
        i, b = self.offset(k), self.block_size
        x = torch.from_numpy(self.file.read(i, i + b + 1))
        return {INPUT_IDS: x[:-1], LABELS: x[1:]}


class FileEvalWindows(Dataset):
    """Non-overlapping windows scoring every token of ``file`` once; ``context``: the tokens just before it. A short
    held-out text (an evaluation folder) is one window of all its tokens, as ``text_lm``'s ``EvalWindows``."""

    def __init__(self, file: TokenFile, context: np.ndarray, block_size: int):
        self.file, self.context = file, np.asarray(context, dtype=np.int64)
        self.first, self.last = len(self.context), len(self.context) + len(file)
        if self.first < 1 or len(file) < 1:
            raise ValueError(f"FileEvalWindows needs a token of context and one to score, got {self.first} and "
                             f"{len(file)}")
        self.block_size = b = min(block_size, self.last - 1)
        self.full, self.remainder = divmod(self.last - self.first, b)

    def __len__(self) -> int:
        return self.full + (self.remainder > 0)

    def read(self, lo: int, hi: int) -> np.ndarray:
        """Tokens [lo, hi) of context + file."""
        c = len(self.context)
        head = self.context[lo:min(hi, c)] if lo < c else np.zeros(0, dtype=np.int64)
        return np.concatenate([head, self.file.read(max(lo, c) - c, hi - c)]) if hi > c else head

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        if not 0 <= k < len(self):
            raise IndexError(k)
        b = self.block_size
        start, scored = (self.first - 1 + k * b, 0) if k < self.full else (self.last - 1 - b, b - self.remainder)
        x = torch.from_numpy(self.read(start, start + b + 1))
        labels = x[1:].clone()
        labels[:scored] = IGNORE_INDEX
        return {INPUT_IDS: x[:-1], LABELS: labels}


# ---------------------------------------------------------------- the dataset


@register_data("token_file")
def token_file(path: str, block_size: int = 64, max_windows: int = 1_000_000, seed: int = 0) -> DataBundle:
    """Next-token prediction on a prepared folder of token files (train.bin, val.bin, meta.json; see the
    module docstring); the vocabulary is the folder's tokenizer/.

    block_size: tokens a window reads (the model's max_positions).
    max_windows: training items per epoch; a longer file is sampled evenly (one offset per stretch).
    seed: where inside each stretch those offsets fall.
    """
    check_sizes("data.args", block_size=block_size, max_windows=max_windows)
    check_sizes("data.args", minimum=0, seed=seed)
    meta, files = token_files(path)
    vocab = load_vocab(Path(path) / TOKENIZER_DIR)
    if vocab.vocab_size != meta["vocab_size"]:
        raise ConfigError(f"token_file: {Path(path) / TOKENIZER_DIR} holds {vocab.vocab_size} tokens but "
                          f"{META_FILE} says vocab_size {meta['vocab_size']}; {FIX}")
    train = files.get("train")
    if train is not None and len(train) < block_size + 1:
        raise ConfigError(f"token_file: {train.path} has {len(train)} tokens, fewer than one window of block_size + 1"
                          f" = {block_size + 1}; give a smaller data.args.block_size or more text")
    characters = dict(meta.get("characters") or {})
    evals, context = {}, None if train is None else train.read(max(0, len(train) - block_size), len(train))
    if train is None:  # an evaluation folder: its text starts a document, after [EOS] (text_lm's rule) where the
        first = next(s for s in ("val", "test") if s in files)  # vocabulary has one, else its first token is context
        context = np.array([vocab.eos_id]) if vocab.eos_id is not None else files[first].read(0, 1)
        if vocab.eos_id is None:
            files[first] = TokenFile(files[first].path, meta["dtype"], len(files[first]), start=1)
            if characters.get(first):
                characters[first] -= len(vocab.decode(context.tolist(), skip_special_tokens=False))
    for split in ("val", "test"):
        if split in files and len(files[split]):
            evals[split] = FileEvalWindows(files[split], context, block_size)
            context = files[split].read(max(0, len(files[split]) - block_size), len(files[split]))
    if train is None and not evals:
        raise ConfigError(f"token_file: {path} holds one token, the context of a text without [EOS]: nothing to "
                          "score; prepare a longer text")

    def loss_metrics(split: str, ce: float) -> dict[str, float]:
        metrics = {"perplexity": perplexity(ce), "bits_per_token": bits_per_token(ce)}
        if characters.get(split):
            metrics["bits_per_character"] = bits_per_character(ce, len(files[split]), characters[split])
        return metrics

    def save(run_dir: Path) -> None:
        vocab.save(Path(run_dir) / TOKENIZER_DIR)
        summary = {"corpus": str(Path(path).resolve()), "tokenizer": vocab.kind, "vocab_size": vocab.vocab_size,
                   "dtype": meta["dtype"], "block_size": block_size, "tokens": {s: len(f) for s, f in files.items()},
                   "train_windows": len(train_windows) if train_windows is not None else 0}
        if characters:
            summary["characters"] = characters
        (Path(run_dir) / "data.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")

    train_windows = None if train is None else FileTrainWindows(train, block_size, max_windows, seed)
    model_args = {"tokenizer": {"vocab_size": vocab.vocab_size, "max_positions": block_size}}
    return DataBundle(train=train_windows, val=evals.get("val"), test=evals.get("test"), loss_metrics=loss_metrics,
                      save=save, model_args=model_args)


__all__ = ["META_FILE", "TOKENIZER_DIR", "token_dtype", "TokenWriter", "write_meta", "encoded_chunks",
           "write_text_corpus", "read_meta", "token_files",
           "TokenFile", "FileTrainWindows", "FileEvalWindows", "token_file"]
