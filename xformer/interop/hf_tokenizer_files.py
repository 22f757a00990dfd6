"""The tokenizer files of a Hugging Face export (export.py) that a run's own vocabulary does not carry: BERT's
input template, a character vocabulary as a ``tokenizer.json``."""
from __future__ import annotations

from pathlib import Path

from .support import need


def add_bert_template(path: Path) -> None:
    """Give a BERT export's tokenizer.json the input template its model was trained on, as Hugging Face's BERT
    tokenizers carry it: [CLS] A [SEP] (token types 0) and [CLS] A [SEP] B [SEP] (B's part 1), so that
    ``AutoTokenizer`` adds what ``BertTokenizer`` (vocab.txt) and xformer's text_mlm items have. One that has a
    template (a folder the run started from) keeps it."""
    tokenizers = need("tokenizers", "--format hf")
    tokenizer = tokenizers.Tokenizer.from_file(str(path))
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    if tokenizer.post_processor is not None or cls is None or sep is None:
        return
    tokenizer.post_processor = tokenizers.processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    tokenizer.save(str(path))


def write_char_tokenizer(vocab, path: Path) -> None:
    """A character vocabulary as a Hugging Face ``tokenizer.json``, so that ``AutoTokenizer.from_pretrained``
    (a ``PreTrainedTokenizerFast``) gives the run's ids: every character is a piece (a split that isolates each
    one), looked up in the run's table (WordLevel: character -> id, its special tokens at theirs), and decoding
    joins the pieces with nothing between them (``Fuse``). A character outside the table is the vocabulary's
    [UNK] when it has one, else refused by the tokenizer, as ``CharVocab.encode`` refuses it."""
    tokenizers = need("tokenizers", "--format hf")
    unk = "[UNK]" if "[UNK]" in vocab.specials else None
    tokenizer = tokenizers.Tokenizer(tokenizers.models.WordLevel(dict(vocab.stoi), unk_token=unk))
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.Split(tokenizers.Regex(r"[\s\S]"), behavior="isolated")
    tokenizer.decoder = tokenizers.decoders.Fuse()
    tokenizer.add_special_tokens(list(vocab.specials))
    tokenizer.save(str(path))


__all__ = ["add_bert_template", "write_char_tokenizer"]
