"""String <-> id vocabularies: WordPiece (trained with Hugging Face ``tokenizers``) and characters.

This is the "tokenizer" in the Hugging Face sense; ``xformer/tokenizers/text.py``
is the learned embedding that turns the ids into vectors.

WordPiece (Schuster & Nakajima 2012; BERT's tokenizer): text is normalised
(Unicode clean-up, optional lowercasing and accent stripping), split on
whitespace and punctuation, and each word is cut greedily into the longest
vocabulary pieces, continuations marked ``##`` ("tokenization" -> "token",
"##ization"). Training grows the vocabulary from characters by merging the
most frequent adjacent pair, count(a, b), until ``vocab_size``. That is BPE's
rule, which Hugging Face's ``WordPieceTrainer`` uses and ours too
(xformer/data/wordpiece_training.py), not the score count(ab) / (count(a) count(b))
that descriptions of Google's WordPiece give.

Every vocabulary carries the special tokens

    [PAD] [UNK] [CLS] [SEP] [MASK] [BOS] [EOS]       ids 0..6 for WordPiece

(a character vocabulary holds the ones it is given, none by default, so that
a char-level LM on tinyshakespeare has exactly nanoGPT's 65 symbols).

A saved vocabulary is a folder: ``xformer_tokenizer.json`` (kind and
settings); for WordPiece also ``tokenizer.json`` (loadable by
``tokenizers.Tokenizer.from_file`` and ``transformers.PreTrainedTokenizerFast``)
and ``vocab.txt`` (one piece per line in id order, the file ``BertTokenizer``
reads).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..config import ConfigError
from ..folders import write_atomically

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[BOS]", "[EOS]")
META_FILE = "xformer_tokenizer.json"
_ROLES = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]", "bos": "[BOS]",
          "eos": "[EOS]"}
WHITESPACE = " \n\n\t  \n"  # what a vocabulary must give back to keep a text's layout (``keeps_whitespace``)


class Vocab:
    """Shared interface: ``encode``, ``decode``, ``vocab_size``, the special ids, ``save``."""

    kind = ""
    keeps_whitespace = False  # decode(encode(text)) keeps spaces, tabs and line breaks as they were

    def __init__(self, specials: dict[str, int]):
        self.specials = specials  # token -> id

    # ---- special tokens -----------------------------------------------------------------------------
    def _role(self, role: str) -> int | None:
        return self.specials.get(_ROLES[role])

    pad_id = property(lambda self: self._role("pad"))
    unk_id = property(lambda self: self._role("unk"))
    cls_id = property(lambda self: self._role("cls"))
    sep_id = property(lambda self: self._role("sep"))
    mask_id = property(lambda self: self._role("mask"))
    bos_id = property(lambda self: self._role("bos"))
    eos_id = property(lambda self: self._role("eos"))

    @property
    def special_ids(self) -> list[int]:
        return sorted(self.specials.values())

    def require(self, *roles: str) -> None:
        """Fail clearly when a task needs special tokens this vocabulary lacks."""
        missing = [_ROLES[r] for r in roles if self._role(r) is None]
        if missing:
            raise ConfigError(f"the {self.kind} vocabulary has no {', '.join(missing)} token; "
                              f"build it with special tokens {', '.join(SPECIAL_TOKENS)}")

    # ---- to implement -------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        """Ids of ``text``, with no special tokens added."""
        raise NotImplementedError

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        raise NotImplementedError

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def save(self, folder: str | Path) -> Path:
        raise NotImplementedError

    def __len__(self) -> int:
        return self.vocab_size


class CharVocab(Vocab):
    """One id per character; ``specials`` (if any) first, then the characters in sorted order."""

    kind = "char"
    keeps_whitespace = True

    def __init__(self, chars: Iterable[str], specials: Sequence[str] = ()):
        chars = sorted(set(chars) - set(specials))
        specials = list(dict.fromkeys(specials))
        super().__init__({tok: i for i, tok in enumerate(specials)})
        self.itos = specials + chars
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    @classmethod
    def from_text(cls, text: str, specials: Sequence[str] = ()) -> CharVocab:
        return cls(set(text), specials)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.stoi[c] for c in text]
        except KeyError:
            unk = self.unk_id
            unknown = sorted({c for c in text if c not in self.stoi})
            if unk is None:
                shown = unknown if len(unknown) <= 10 else [*unknown[:10], "..."]
                raise ConfigError(f"{len(unknown)} character(s) {shown!r} are not in the {self.vocab_size}-symbol "
                                  "character vocabulary (the characters of the text it was made from), which has no "
                                  "[UNK]; give text of its characters only (replace or drop those), or train with a "
                                  "WordPiece vocabulary, whose [UNK] stands for what it lacks") from None
            return [self.stoi.get(c, unk) for c in text]

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        special = set(self.specials.values()) if skip_special_tokens else set()
        return "".join(self.itos[i] for i in map(int, ids) if i not in special)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        chars = self.itos[len(self.specials):]
        meta = {"kind": self.kind, "specials": list(self.specials), "chars": chars}
        write_atomically(folder / META_FILE, json.dumps(meta, ensure_ascii=False, indent=1))
        return folder


class WordPieceVocab(Vocab):
    """A Hugging Face ``tokenizers.Tokenizer``: a WordPiece model (BERT's normaliser and pre-tokeniser) learned
    here, or the tokenizer of a Hugging Face folder (GPT-2's byte-level BPE too, interop/pretrained.py).

    ``aliases``: the folder's own names of special tokens the import renamed, e.g. {"<|endoftext|>": "[EOS]"}:
    typed in a text, such a name is that one token, as the folder's tokenizer reads it (a GPT-2 corpus
    separates its documents with <|endoftext|>).
    ``keeps_whitespace``: decoding gives back the spaces, tabs and line breaks encoded (a byte-level BPE does;
    WordPiece splits at whitespace and drops it)."""

    kind = "wordpiece"

    def __init__(self, tokenizer, lowercase: bool = True, aliases: dict[str, str] | None = None):
        self.tokenizer = tokenizer
        self.lowercase = lowercase
        vocab = tokenizer.get_vocab()
        super().__init__({tok: vocab[tok] for tok in SPECIAL_TOKENS if tok in vocab})
        self.aliases = {theirs: ours for theirs, ours in (aliases or {}).items() if ours in self.specials}
        taken = "".join(c for c in WHITESPACE if not self._refuses(c))  # a table without [UNK] may lack a tab
        self.keeps_whitespace = bool(taken) and self.decode(self.encode(taken), skip_special_tokens=False) == taken

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2, lowercase: bool = True,
              special_tokens: Sequence[str] = SPECIAL_TOKENS) -> WordPieceVocab:
        """Learn a vocabulary of at most ``vocab_size`` pieces (specials included) from ``texts``: the same
        pieces and ids every time (xformer/data/wordpiece_training.py).

        ``min_frequency``: a merge must occur at least this often to be learned.
        """
        from .wordpiece_training import train_wordpiece

        if vocab_size <= len(special_tokens):
            raise ConfigError(f"vocab_size {vocab_size} leaves no room beside the {len(special_tokens)} "
                              "special tokens; give a few thousand")
        if not min_frequency >= 0:  # the trainer takes an unsigned count
            raise ConfigError(f"min_frequency must be >= 0 (the least count of a merged pair), got {min_frequency}")
        tokenizer = train_wordpiece(texts, vocab_size, min_frequency, lowercase, special_tokens)
        return cls(tokenizer, lowercase)

    @classmethod
    def train_files(cls, paths: Iterable[str | Path], **kwargs) -> WordPieceVocab:
        from .corpus import read_text_files

        return cls.train(read_text_files(list(paths)).splitlines(), **kwargs)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def _named(self, text: str) -> str:
        """``text`` with the source's special-token names written as ours (``aliases``)."""
        for theirs, ours in self.aliases.items():
            text = text.replace(theirs, ours)
        return text

    def _refuses(self, char: str) -> bool:
        """Whether the tokenizer has no id for ``char``: a table without [UNK] (the WordLevel tokenizer.json of an
        exported character vocabulary) raises where WordPiece and byte-level BPE give [UNK] or bytes."""
        try:
            self.tokenizer.encode(char, add_special_tokens=False)
        except Exception:  # tokenizers raises its errors as plain Exception
            return True
        return False

    def _refuse_unknown(self, texts: Sequence[str]) -> None:
        """Called as the tokenizer failed: a one-line ConfigError naming every character of ``texts`` it has no id
        for (as ``CharVocab.encode`` names them); returns when there is none (another failure, raised as it is)."""
        unknown = sorted(c for c in set("".join(t for t in texts if isinstance(t, str))) if self._refuses(c))
        if unknown:
            shown = unknown if len(unknown) <= 10 else [*unknown[:10], "..."]
            raise ConfigError(f"{len(unknown)} character(s) {shown!r} are not in the {self.vocab_size}-piece "
                              "vocabulary, which has no [UNK]; give text of its characters only (replace or drop "
                              "those)") from None

    def encode(self, text: str) -> list[int]:
        try:
            return self.tokenizer.encode(self._named(text), add_special_tokens=False).ids
        except Exception:
            self._refuse_unknown([text])
            raise

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        texts = [self._named(t) for t in texts]
        try:
            return [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]
        except Exception:
            self._refuse_unknown(texts)
            raise

    def tokens(self, text: str) -> list[str]:
        """The pieces of ``text`` as strings (``["token", "##ization"]``)."""
        return self.tokenizer.encode(self._named(text), add_special_tokens=False).tokens

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        # each file whole or not at all (what Tokenizer.save writes, through a temporary file); the description
        # last, so that a folder with it holds the rest
        write_atomically(folder / "tokenizer.json", self.tokenizer.to_str(pretty=True))
        vocab = sorted(self.tokenizer.get_vocab().items(), key=lambda kv: kv[1])
        write_atomically(folder / "vocab.txt", "".join(tok + "\n" for tok, _ in vocab))
        meta = {"kind": self.kind, "lowercase": self.lowercase, "vocab_size": self.vocab_size,
                **({"aliases": self.aliases} if self.aliases else {})}
        write_atomically(folder / META_FILE, json.dumps(meta, indent=1))
        return folder


def load_vocab(folder: str | Path) -> Vocab:
    """The vocabulary saved in ``folder`` by ``Vocab.save`` (or ``xformer tokenizer train``)."""
    folder = Path(folder)
    meta_path = folder / META_FILE
    if not folder.exists():
        raise ConfigError(f"{folder} does not exist; give a folder saved by xformer tokenizer train (--out DIR)")
    if not meta_path.is_file():
        raise ConfigError(f"{folder} holds no saved tokenizer ({META_FILE} is missing); "
                          "make one with: xformer tokenizer train FILES --out DIR")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        kind = meta["kind"]
    except (ValueError, KeyError, TypeError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ConfigError(f"{meta_path} is not a saved tokenizer's description ({type(e).__name__}); "
                          "make the folder again with: xformer tokenizer train FILES --out DIR") from None
    if kind == "char":
        return CharVocab(meta["chars"], meta["specials"])
    if kind == "wordpiece":
        from tokenizers import Tokenizer

        return WordPieceVocab(Tokenizer.from_file(str(folder / "tokenizer.json")), meta.get("lowercase", True),
                              meta.get("aliases"))
    raise ConfigError(f"{meta_path}: unknown tokenizer kind {kind!r} (expected char or wordpiece)")


LEARNING_ARGS = {"vocab_size": 8000, "min_frequency": 2, "lowercase": True}  # what learning WordPiece reads (defaults)


def lowercases(vocab: Vocab) -> bool:
    """Whether the vocabulary lowercases the text it reads (its normaliser's doing, for a folder of any source)."""
    normalizer = getattr(getattr(vocab, "tokenizer", None), "normalizer", None)
    return normalizer is not None and normalizer.normalize_str("A") == "a"


def check_learning_args(kind: str, vocab: Vocab, vocab_size=None, min_frequency=None, lowercase=None) -> None:
    """Refuse a WordPiece learning setting given (not None) with a vocabulary that does not read it: characters,
    or one saved in a folder. A value that is the vocabulary's own (its size, its lowercasing) is merely redundant."""
    chars = isinstance(vocab, CharVocab)
    what = ("tokenizer=char takes every character of the text" if kind == "char" else
            f"tokenizer={kind} is a saved {'character ' if chars else ''}vocabulary, already learned")
    fix = "out (data.args.KEY=null drops a recipe's), or give tokenizer=wordpiece to learn one with it"

    def refuse(key: str, value, why: str) -> None:
        raise ConfigError(f"data.args.{key}={value} but {what}{why}; leave {key} {fix.replace('KEY', key)}")

    if vocab_size is not None and vocab_size != vocab.vocab_size:
        refuse("vocab_size", vocab_size, f" ({vocab.vocab_size} {'symbols' if chars else 'pieces'})")
    if lowercase is not None and lowercase != lowercases(vocab):
        refuse("lowercase", lowercase, f", and {'keeps case' if not lowercases(vocab) else 'lowercases its text'}")
    if min_frequency is not None:
        refuse("min_frequency", min_frequency, ": there are no merges to count")


def make_vocab(kind: str, text: str, vocab_size: int | None = None, min_frequency: int | None = None,
               lowercase: bool | None = None, char_specials: Sequence[str] = ()) -> Vocab:
    """The vocabulary a dataset's ``tokenizer`` argument names, learned from ``text`` when it is not a folder:

    "char"        CharVocab of the text's characters (plus ``char_specials``)
    "wordpiece"   WordPieceVocab trained on the text's lines (``vocab_size``, ``min_frequency``, ``lowercase``;
                  left out (None): ``LEARNING_ARGS``)
    a folder      the vocabulary saved there (e.g. RUN_DIR/tokenizer of a pre-trained run)

    The learning settings given with "char" or a folder are refused unless they are the vocabulary's own
    (``check_learning_args``): silently unused, they would cost the user a run.
    """
    if kind == "wordpiece":
        given = {"vocab_size": vocab_size, "min_frequency": min_frequency, "lowercase": lowercase}
        settings = {key: default if given[key] is None else given[key] for key, default in LEARNING_ARGS.items()}
        return WordPieceVocab.train(text.splitlines(), **settings)
    if kind == "char":
        vocab = CharVocab.from_text(text, char_specials)
    elif Path(kind).is_dir():
        vocab = load_vocab(kind)
    else:
        what = "is a file, not a folder" if Path(kind).exists() else "does not exist"
        raise ConfigError(f"tokenizer {kind!r} is neither 'char' nor 'wordpiece', and as a folder it {what}; give "
                          "char, wordpiece or the folder of a saved tokenizer (the --out of xformer tokenizer train, "
                          "or a trained run's RUN_DIR/tokenizer)")
    check_learning_args(kind, vocab, vocab_size, min_frequency, lowercase)
    return vocab


def without_learning_args(args: dict, folder: str | Path) -> dict:
    """A text dataset's ``args`` reading the vocabulary saved in ``folder`` (a run's own, a checkpoint's) in place of
    the one they learned: the settings that learned it dropped, since the saved vocabulary has its own."""
    return {**{k: v for k, v in args.items() if k not in LEARNING_ARGS}, "tokenizer": str(folder)}


__all__ = ["SPECIAL_TOKENS", "Vocab", "CharVocab", "WordPieceVocab", "load_vocab", "make_vocab", "LEARNING_ARGS",
           "lowercases", "check_learning_args", "without_learning_args"]
