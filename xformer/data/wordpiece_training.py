"""WordPiece training that gives the same vocabulary, ids included, every time.

Hugging Face ``tokenizers`` learns a WordPiece vocabulary with its BPE trainer: start from the characters,
then merge the most frequent adjacent pair (a, b) of the corpus' words into one piece, again and again,

    (a, b)* = argmax count(a, b),   ties to the pair of lower ids,   until vocab_size pieces,

where a piece inside a word is marked ``##`` ("##ization"). Its ``WordPieceTrainer`` is not deterministic
(huggingface/tokenizers#1794): the ``##`` pieces of single characters get their ids in the iteration order
of a hash map, which changes from one training to the next, and because ties go to the pair of lower ids
the merges can differ too. On tinyshakespeare at 8,000 pieces, four trainings gave four id orders and token
sets that differed in up to 3 pieces, so two runs of one recipe and seed trained different models.

The fix keeps the trainer (fast, Rust) and takes the hash map out of the id order: every character after a
word's first is written as a character of its own, C(c), from Unicode's private-use planes (U+F0000 on,
which the normaliser removes from any text, so no text holds them), so that the word "token" is fed as "t C(o) C(k) C(e) C(n)" to the plain BPE trainer, with no ``##``. Its
alphabet is then sorted by code point, specials first, characters, then the C(c) in the order of c, which
is one of the orders ``WordPieceTrainer`` draws at random; the learned pieces are mapped back
(C(o) C(k) -> "##ok", t C(o) -> "to"). With that order both trainers give the same tokenizer, to the byte of
its JSON (``tests/test_wordpiece_training.py``). The words are counted here with BERT's normaliser and
pre-tokeniser, as ``WordPieceTrainer`` counts them.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

FIRST_CONTINUATION_CODE = 0xF0000  # Supplementary Private Use Areas A and B: 131,072 code points
_LINES_PER_BATCH = 1000


def bert_normalizer(lowercase: bool):
    from tokenizers import normalizers

    return normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                      lowercase=lowercase)


def count_words(texts: Iterable[str], normalizer, pre_tokenizer) -> Counter:
    """How often each word of ``texts`` occurs, the words as BERT's normaliser and pre-tokeniser cut them.

    The normaliser turns every whitespace into a space, so the text is counted in space-separated chunks and
    each distinct chunk is pre-tokenised once (the pre-tokeniser splits on whitespace itself, so a chunk
    holding other whitespace is still cut where the trainer would cut it)."""
    words: Counter = Counter()
    pieces: dict[str, list[str]] = {}

    def count(batch: list[str]) -> None:
        for chunk, n in Counter(normalizer.normalize_str("\n".join(batch)).split(" ")).items():
            if chunk not in pieces:
                pieces[chunk] = [word for word, _ in pre_tokenizer.pre_tokenize_str(chunk)]
            for word in pieces[chunk]:
                words[word] += n

    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == _LINES_PER_BATCH:
            count(batch)
            batch = []
    count(batch)
    return words


def train_wordpiece(texts: Iterable[str], vocab_size: int, min_frequency: int, lowercase: bool,
                    special_tokens: Sequence[str]):
    """A ``tokenizers.Tokenizer`` with BERT's normaliser and pre-tokeniser and a WordPiece model learned from
    ``texts``: what ``WordPieceTrainer`` learns, with its ``##`` characters in code point order."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    normalizer, pre_tokenizer = bert_normalizer(lowercase), pre_tokenizers.BertPreTokenizer()
    words = count_words(texts, normalizer, pre_tokenizer)
    characters = {c for word in words for c in word}
    # no word holds a private-use character: BERT's clean-up drops them with the control characters (category C*)
    table = {ord(c): FIRST_CONTINUATION_CODE + i for i, c in enumerate(sorted({c for w in words for c in w[1:]}))}
    back = {code: c for c, code in table.items()}

    def fed() -> Iterable[str]:  # each word as often as the text holds it, in lines of at most 1,000 copies
        for word, n in words.items():
            spelled = word[0] + word[1:].translate(table)
            for start in range(0, n, 1000):
                yield " ".join([spelled] * min(1000, n - start))

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(special_tokens), show_progress=False,
                                  initial_alphabet=sorted(characters))  # a first character only is a piece too
    bpe.train_from_iterator(fed(), trainer)

    specials = set(special_tokens)

    def wordpiece(piece: str) -> str:
        if piece in specials:
            return piece
        if ord(piece[0]) in back:
            return "##" + piece.translate(back)
        return piece[0] + piece[1:].translate(back)

    vocab = {wordpiece(piece): i for piece, i in bpe.get_vocab().items()}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", continuing_subword_prefix="##"))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    tokenizer.add_special_tokens(list(special_tokens))  # as train_from_iterator registers them
    return tokenizer


__all__ = ["bert_normalizer", "count_words", "train_wordpiece"]
