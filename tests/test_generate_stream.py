"""Streaming (``generate_text(stream=...)``, and `xformer generate` with one prompt): the new text is handed on
while it is decoded, a settled piece at a time, and the pieces joined are exactly the text returned without
streaming, for characters, WordPiece (words that "##" pieces join, clean-up of spaces) and byte-level BPE (tokens
that hold part of a character)."""
import pytest
import torch

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.cli import main
from xformer.config import ConfigError
from xformer.data.vocab import CharVocab, WordPieceVocab
from xformer.generation import generate_text

TEXT = "the quick brown fox jumps over the lazy dog, don't you think? a cat naps\nthe end.\n"


def _model(vocab_size, positions=64, seed=0):
    torch.manual_seed(seed)
    model = build_model(ModelConfig("decoder", CoreConfig(d_model=32, n_layers=1, n_heads=2, d_ff=32),
                                    PartConfig("text", {"vocab_size": vocab_size, "max_positions": positions}),
                                    PartConfig("causal_lm"))).eval()
    model.tokenizer.embed.weight.data.mul_(5)  # peaked, varied continuations (a random model's are flat and repeat)
    model.tokenizer.positions.weight.data.mul_(25)
    return model


def _bpe():
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()  # trained on text with characters of two and three bytes
    bpe.train_from_iterator([TEXT + "café déjà vu, 日本語のテキスト " * 3], vocab_size=300, min_frequency=1,
                            special_tokens=["<|endoftext|>"], show_progress=False)
    return bpe._tokenizer


@pytest.fixture(autouse=True)
def every_token(monkeypatch):
    """The text read after every token (the tiny models here write 40 tokens within the 0.05 s between readings)."""
    import xformer.generation.stream as stream

    monkeypatch.setattr(stream, "INTERVAL", 0.0)


VOCABS = {"chars": lambda: CharVocab.from_text(TEXT),
          "wordpiece": lambda: WordPieceVocab.train([TEXT] * 3, vocab_size=90, min_frequency=1),
          "byte-level BPE": _bpe}


def _streamed(model, vocab, prompt, n, **options):
    pieces, calls = [], []
    original = model.forward

    def counting(*args, **kwargs):  # how many tokens had been decoded when each piece came
        calls.append(1)
        return original(*args, **kwargs)

    model.forward = counting
    try:
        text = generate_text(model, vocab, prompt, n, stream=lambda piece: pieces.append((piece, len(calls))),
                             **options)
    finally:
        del model.forward
    return text, pieces


@pytest.mark.parametrize("name", list(VOCABS))
@pytest.mark.parametrize("options", [{}, {"do_sample": True}], ids=["greedy", "sampling"])
def test_the_pieces_are_the_text_and_come_while_it_is_decoded(name, options):
    vocab = VOCABS[name]()
    size = vocab.get_vocab_size() if name == "byte-level BPE" else vocab.vocab_size
    worded = 0
    for seed in range(4):
        model = _model(size, seed=seed)
        seeded = lambda: {**options, "generator": torch.Generator().manual_seed(seed)}  # noqa: E731
        plain = generate_text(model, vocab, "the quick", 40, **seeded())
        text, pieces = _streamed(model, vocab, "the quick", 40, **seeded())
        assert text == plain and "".join(p for p, _ in pieces) == plain, (pieces, plain)
        if len(plain.split()) > 3:  # several words: some were handed on before the last token was decoded
            assert len(pieces) > 2 and pieces[0][1] < 40, pieces
            worded += 1
    assert worded, "no continuation of several words: the streaming was not tested"


def test_a_word_waits_until_a_later_token_can_no_longer_change_it():
    """A hand-made vocabulary whose decoding rewrites earlier text: "##" joins a piece to the word before it and
    the clean-up takes back the space before "n't", and the spaces around "'" once a word follows it (Hugging
    Face's clean_up_tokenization). Every piece handed on is a prefix of the final text."""

    class Rewriting:
        pad_id, bos_id, eos_id, keeps_whitespace = 0, None, 1, True
        tokens = ["[PAD]", "[EOS]", "do", "n't", "play", "##ing", "go", "!", "it", "'", "s"]
        vocab_size = len(tokens)

        def encode(self, text):
            return [self.tokens.index(w) for w in text.split()]

        def encode_batch(self, texts):
            return [self.encode(t) for t in texts]

        def decode(self, ids, skip_special_tokens=True):
            words = [self.tokens[i] for i in ids if i > 1]
            text = " ".join(words).replace(" ##", "")
            return text.replace(" n't", "n't").replace(" !", "!").replace(" ' ", "'")

    vocab = Rewriting()
    order = [3, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1]  # n't do n't play ##ing go ! it ' s [EOS], whatever the model says

    class Scripted(torch.nn.Module):
        """A decoder "model" whose next token is fixed by the position: the test is about decoding text."""
        architecture = "decoder"

        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def forward(self, batch, **kwargs):
            ids = batch["input_ids"]
            logits = torch.full((*ids.shape, vocab.vocab_size), -1e4)
            logits[:, -1, order[min(ids.shape[1] - 1, len(order) - 1)]] = 0
            return {"logits": logits}

    pieces = []
    text = generate_text(Scripted(), vocab, "do", 10, stream=pieces.append)
    assert text == "n't don't playing go! it's"
    assert "".join(pieces) == text and len(pieces) > 1, pieces
    for k in range(1, len(pieces) + 1):
        assert text.startswith("".join(pieces[:k]))


def test_stop_strings_eos_and_the_sliding_window_stream_too():
    vocab = CharVocab.from_text(TEXT, specials=("[PAD]", "[BOS]", "[EOS]"))
    model = _model(vocab.vocab_size, positions=12)
    for options in ({"stop": ["e "]}, {"stop": ["o"], "do_sample": True}, {"do_sample": True}):
        plain = generate_text(model, vocab, "the ", 30, generator=torch.Generator().manual_seed(1), **options)
        text, pieces = _streamed(model, vocab, "the ", 30, generator=torch.Generator().manual_seed(1), **options)
        assert text == plain == "".join(p for p, _ in pieces)  # 4 + 30 tokens through a window of 12


def test_the_text_is_read_at_most_every_interval(monkeypatch):
    """Decoding the whole text again after every token of a fast model would slow it down: it is read at most every
    INTERVAL seconds. With an hour, the first reading (after the first token) settles nothing here, and the rest
    comes when decoding ends."""
    import xformer.generation.stream as stream

    vocab = VOCABS["chars"]()
    model = _model(vocab.vocab_size, seed=3)
    plain, every = _streamed(model, vocab, "the quick", 40)
    assert len(every) > 1, every  # read after every token: several pieces
    monkeypatch.setattr(stream, "INTERVAL", 3600.0)
    text, pieces = _streamed(model, vocab, "the quick", 40)
    assert text == plain and [p for p, _ in pieces] == [plain], pieces


def test_stream_takes_one_sequence_decoded_greedily_or_by_sampling():
    vocab = CharVocab.from_text(TEXT)
    model = _model(vocab.vocab_size)
    with pytest.raises(ConfigError, match="give one prompt, not 2"):
        generate_text(model, vocab, ["the", "a"], 5, stream=print)
    with pytest.raises(ConfigError, match="beam search changes its best sequence"):
        generate_text(model, vocab, "the", 5, num_beams=2, stream=print)


@pytest.fixture
def loaded(monkeypatch):
    from xformer.commands import generate as command

    vocab = CharVocab.from_text(TEXT)
    model = _model(vocab.vocab_size, positions=24, seed=4)  # its greedy text holds several words
    monkeypatch.setattr(command, "load_text_model", lambda run_dir, checkpoint: (model, vocab))
    return model, vocab


@pytest.mark.parametrize("options", [[], ["--greedy"], ["--stop", "e"], ["--max-new-tokens", "60"]])
def test_the_command_prints_one_prompt_as_it_is_decoded(loaded, capsys, monkeypatch, options):
    """What standard output shows is the prompt and the text generate_text returns, as before streaming; the
    prompt and the first piece are on the screen before decoding ends."""
    import xformer.generation.stream as stream

    model, vocab = loaded
    seen_during = []
    hand_on = stream.TextStream._hand_on

    def watching(self, text):
        hand_on(self, text)
        seen_during.append(capsys.readouterr().out)

    monkeypatch.setattr(stream.TextStream, "_hand_on", watching)
    assert main(["generate", "RUN", "--prompt", "the ", "--seed", "4", *options]) == 0
    shown = "".join(seen_during) + capsys.readouterr().out
    greedy, stop = "--greedy" in options, [options[1]] if "--stop" in options else []
    n = int(options[1]) if "--max-new-tokens" in options else None
    expected = generate_text(model, vocab, ["the "], n, do_sample=not greedy, stop=stop,
                             generator=torch.Generator().manual_seed(4))[0]
    assert shown == "the " + expected + "\n"
    if " " in expected.strip() or greedy:  # a word settled before the end: it was on the screen before the end
        assert any(during.startswith("the ") for during in seen_during[:-1]), seen_during


def test_ctrl_c_mid_text_ends_the_line(loaded, capsys, monkeypatch):
    """Interrupted after some text was printed: the text stays, its line is ended, and the command exits 130 with
    its one line on stderr (not a traceback, nor "xformer: interrupted" glued to the text)."""
    import xformer.generation.stream as stream

    hand_on = stream.TextStream._hand_on

    def interrupted(self, text):
        hand_on(self, text)
        if self.written:
            raise KeyboardInterrupt

    monkeypatch.setattr(stream.TextStream, "_hand_on", interrupted)
    assert main(["generate", "RUN", "--prompt", "the ", "--greedy"]) == 130
    out, err = capsys.readouterr()
    assert out.startswith("the ") and len(out) > len("the \n") and out.endswith("\n") and out.count("\n") == 1, out
    assert err == "xformer: interrupted\n", err


def test_a_prompt_refused_before_decoding_prints_nothing(loaded, capsys):
    long = "the quick brown fox jumps"  # 25 characters: all 24 positions filled
    assert main(["generate", "RUN", "--prompt", long]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "no new token fits" in err and err.count("\n") == 1, (out, err)
