"""`xformer tokenizer train FILES... --vocab-size N --out DIR`: learn a string <-> id vocabulary;
`xformer tokenizer encode DIR_OR_RUN TEXT...`: how a saved vocabulary (or a run's) cuts texts into ids.
`xformer tokenizer decode DIR_OR_RUN ID...`: the text and pieces of ids.

WordPiece by default (Hugging Face ``tokenizers``, BERT's normaliser, the specials
[PAD] [UNK] [CLS] [SEP] [MASK] [BOS] [EOS]); ``--char`` keeps one id per character
of the text. DIR is what ``text_lm``'s ``tokenizer: DIR`` and ``load_vocab(DIR)`` read.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config import ConfigError
from ..folders import OutputFolder


def _check_out(folder: Path, marker: str) -> None:
    """Refuse at once a file, and a folder that holds files but no saved tokenizer (``marker``), naming them;
    the rest (a saved tokenizer without --overwrite, a folder inside a run) is ``OutputFolder``'s."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder} is a file; give a folder for the tokenizer")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / marker).is_file():
        others = sorted(p.name for p in folder.iterdir())
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise ConfigError(f"--out {folder} already holds other files ({shown}); give a new or empty folder")


def _check_text_file(path: Path) -> None:
    """One of the FILES to learn from: an existing regular file, or a folder of .txt files (read_text_files)."""
    if path.is_dir():
        return
    if not path.is_file():
        what = "is not a regular file" if path.exists() else "does not exist"
        raise ConfigError(f"text file {path} {what}; give existing UTF-8 text files or --default-corpus")


def train(args: argparse.Namespace) -> None:
    from ..data.corpus import default_corpus, read_text_files
    from ..data.vocab import META_FILE, CharVocab, WordPieceVocab

    if args.files and args.default_corpus:
        raise ConfigError("give the text FILES to learn from or --default-corpus, not both")
    if not args.files and not args.default_corpus:
        raise ConfigError("give the text FILES to learn from, or --default-corpus (the bundled Python manual)")
    for name in args.files:
        _check_text_file(Path(name))
    given = [flag for flag, value in (("--vocab-size", args.vocab_size), ("--min-frequency", args.min_frequency),
                                      ("--no-lowercase", args.no_lowercase or None)) if value is not None]
    if args.char and given:
        raise ConfigError(f"{' and '.join(given)} learn WordPiece, but --char takes every character of the text "
                          f"(in its case); leave {'them' if len(given) > 1 else 'it'} out, or drop --char")
    if args.vocab_size is None and not args.char:
        raise ConfigError("give --vocab-size N for a WordPiece vocabulary (a few thousand), or --char")
    args.min_frequency = 2 if args.min_frequency is None else args.min_frequency
    if args.min_frequency < 0:
        raise ConfigError(f"--min-frequency must be >= 0 (the least count of a merged pair), got {args.min_frequency}")
    # a new or empty folder, or (--overwrite) a saved tokenizer's, replaced whole; never a run's tokenizer/
    _check_out(Path(args.out), META_FILE)
    out = OutputFolder(args.out, args.overwrite, what="tokenizer", marker=META_FILE,
                       inputs=[("the text file", name) for name in args.files])
    text = default_corpus() if args.default_corpus else read_text_files(args.files)
    if args.char:
        vocab = CharVocab.from_text(text)
    else:
        vocab = WordPieceVocab.train(text.splitlines(), args.vocab_size, args.min_frequency, not args.no_lowercase)
    out.replace()
    try:
        vocab.save(out.path)
    except BaseException:
        out.failed()  # the old tokenizer (with --overwrite) comes back
        raise
    out.started()

    sample = next((line.strip() for line in text.splitlines() if line.strip()), "")[:60]
    pieces = vocab.tokens(sample) if isinstance(vocab, WordPieceVocab) else list(sample)
    print(json.dumps({"kind": vocab.kind, "vocab_size": vocab.vocab_size, "special_ids": vocab.specials,
                      "out": str(out.path), "sample": sample, "pieces": pieces}, indent=1, ensure_ascii=False))


def saved_vocab(given: str):
    """The vocabulary saved in ``given``: a tokenizer folder, a run folder's tokenizer/, or a Hugging Face folder's
    tokenizer as ``init_from: hf:`` reads it (its special tokens under xformer's names, the folder's own names read
    as them)."""
    from ..data.vocab import META_FILE, WordPieceVocab, load_vocab
    from ..interop.pretrained import hf_tokenizer

    folder = Path(given)
    if not (folder / META_FILE).is_file() and (folder / "tokenizer" / META_FILE).is_file():
        folder = folder / "tokenizer"  # a run folder: its saved vocabulary
    if (folder / META_FILE).is_file():
        return load_vocab(folder)
    config = {}
    if (folder / "config.json").is_file():  # its special tokens' ids; without it, the tokenizer files' names
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except ValueError:
            pass
    tokenizer, renamed = hf_tokenizer(folder, config if isinstance(config, dict) else {}) if folder.is_dir() else \
        (None, {})
    if tokenizer is None and not folder.exists():
        raise ConfigError(f"{given} does not exist; give the --out folder of xformer tokenizer train, a text run or a "
                          "Hugging Face folder")
    if tokenizer is None:
        raise ConfigError(f"{given} holds no saved tokenizer ({META_FILE}, a run's tokenizer/, or a Hugging Face "
                          "folder's tokenizer.json / vocab.json + merges.txt / vocab.txt); give the --out folder of "
                          "xformer tokenizer train, a text run or a Hugging Face folder")
    return WordPieceVocab(tokenizer, lowercase=False, aliases=renamed)


def encode(args: argparse.Namespace) -> None:
    """One JSON line per text: its ids, the piece of each id, and the ids decoded back (as `xformer generate`
    and the text datasets encode it; a WordPiece vocabulary lowercases and drops accents if it was trained so)."""
    from ..data.vocab import WordPieceVocab

    vocab = saved_vocab(args.tokenizer)
    texts = [line.rstrip("\n") for line in sys.stdin] if args.texts == ["-"] else args.texts
    for text in texts:
        ids = vocab.encode(text)
        pieces = vocab.tokens(text) if isinstance(vocab, WordPieceVocab) else [vocab.itos[i] for i in ids]
        print(json.dumps({"text": text, "ids": ids, "pieces": pieces, "decoded": vocab.decode(ids)},
                         ensure_ascii=False))


def decode(args: argparse.Namespace) -> None:
    """One JSON line: the ids, the piece of each, and their text (special tokens shown, as Hugging Face's
    ``tokenizer.decode`` writes them by default)."""
    from ..data.vocab import CharVocab

    vocab = saved_vocab(args.tokenizer)
    words = [w for item in args.ids for w in item.replace(",", " ").replace("[", " ").replace("]", " ").split()]
    bad = [w for w in words if not w.isdigit() or int(w) >= vocab.vocab_size]
    if bad or not words:
        raise ConfigError(f"ids {bad[:5] if bad else []} are not whole numbers from 0 to {vocab.vocab_size - 1} (the "
                          f"vocabulary's {vocab.vocab_size}); give ids as encode prints them, e.g. 12 7 40 or [12, 7]")
    ids = [int(w) for w in words]
    pieces = [vocab.itos[i] for i in ids] if isinstance(vocab, CharVocab) else [vocab.tokenizer.id_to_token(i)
                                                                                for i in ids]
    print(json.dumps({"ids": ids, "pieces": pieces, "text": vocab.decode(ids, skip_special_tokens=False)},
                     ensure_ascii=False))


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("tokenizer", help="learn a WordPiece or character vocabulary from text files, or "
                              "show how one encodes texts and decodes ids",
                              description="Tokenizer (string <-> id vocabulary) tools.")
    sub = p.add_subparsers(dest="tokenizer_command", metavar="ACTION")
    sub.required = True
    t = sub.add_parser(
        "train", help="learn a vocabulary and save it to a folder",
        description="Learn a WordPiece vocabulary (or, with --char, a character vocabulary) from UTF-8 text files "
                    "and save it to DIR (xformer_tokenizer.json; tokenizer.json and vocab.txt for WordPiece). "
                    "Prints a JSON summary.",
        epilog="example: xformer tokenizer train corpus.txt --vocab-size 8000 --out tokenizers/wp8k")
    t.add_argument("files", nargs="*", metavar="FILES", help="UTF-8 text files, or folders of .txt files")
    t.add_argument("--default-corpus", action="store_true",
                   help="learn from the bundled Python reference manual instead of FILES")
    t.add_argument("--vocab-size", type=int, metavar="N", help="WordPiece vocabulary size, special tokens included")
    t.add_argument("--out", required=True, metavar="DIR",
                   help="a new or empty folder to save the tokenizer in (not inside a run folder)")
    t.add_argument("--overwrite", action="store_true",
                   help="replace the tokenizer saved in --out, whole (the old one comes back if saving fails)")
    t.add_argument("--min-frequency", type=int, help="least count of a merged pair (default 2)")
    t.add_argument("--no-lowercase", action="store_true", help="keep case (WordPiece lowercases by default)")
    t.add_argument("--char", action="store_true", help="one id per character of the text (no special tokens)")
    t.set_defaults(func=train)
    e = sub.add_parser(
        "encode", help="show the ids and pieces a saved vocabulary cuts texts into",
        description="Encode each TEXT with the vocabulary saved in DIR (xformer tokenizer train's --out, or a text "
                    "run's folder) and print one JSON line per text: ids, pieces and the ids decoded back.",
        epilog='example: xformer tokenizer encode runs/wordpiece_gpt "Hello world" "unbelievable"')
    e.add_argument("tokenizer", metavar="DIR", help="a saved tokenizer folder, or a text run's folder")
    e.add_argument("texts", nargs="+", metavar="TEXT", help="texts to encode; - reads one text per line of stdin")
    e.set_defaults(func=encode)
    d = sub.add_parser(
        "decode", help="show the text and pieces of ids",
        description="Decode IDS with the vocabulary saved in DIR (a tokenizer folder or a text run's folder) and "
                    "print one JSON line: the ids, the piece of each, and the text (special tokens shown).",
        epilog="example: xformer tokenizer decode runs/shakespeare 30 46 43 1")
    d.add_argument("tokenizer", metavar="DIR", help="a saved tokenizer folder, or a text run's folder")
    d.add_argument("ids", nargs="+", metavar="ID", help="ids, separated by spaces or commas ([12, 7] as encode prints)")
    d.set_defaults(func=decode)
