"""Stop strings (Hugging Face's ``generate(stop_strings=...)``, OpenAI's ``stop``): a sequence ends as soon as its
continuation holds one of them, the output ending with it; the other sequences of the batch go on. Each case
first decodes without a stop string, then picks two characters of that text that a token boundary splits and
that occur there first: with them as the stop string the output is the text up to and including them."""
import pytest
import torch

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.config import ConfigError
from xformer.data.vocab import CharVocab, WordPieceVocab
from xformer.generation import generate_text
from xformer.generation.stop import cut_at_stop
from xformer.generation.text import _continuation

TEXT = "the quick brown fox jumps over the lazy dog while a cat naps"
SPECIALS = ("[PAD]", "[BOS]", "[EOS]")


def _model(vocab, architecture="decoder", positions=64, seed=0):
    torch.manual_seed(seed)
    part = "text" if architecture == "decoder" else "seq2seq_text"
    model = build_model(ModelConfig(architecture, CoreConfig(d_model=32, n_layers=1, n_heads=2, d_ff=32),
                                    PartConfig(part, {"vocab_size": vocab.vocab_size, "max_positions": positions}),
                                    PartConfig("causal_lm"))).eval()
    embedding = model.tokenizer.target if architecture != "decoder" else model.tokenizer
    embedding.embed.weight.data.mul_(5)  # peaked, varied continuations (a random model's are flat and repeat)
    embedding.positions.weight.data.mul_(25)
    return model


def _spanning_stop(vocab, prompt, text, eos=None):
    """(stop, expected): two characters of ``text`` that the boundary between two new tokens splits, the first
    place they occur (not at the very start, not at the end), and ``text`` cut right after them."""
    context = vocab.encode(prompt) or [eos]
    new = vocab.encode(text)  # the continuation re-encoded: its token boundaries
    for k in range(2, len(new) - 2):
        p = len(_continuation(vocab, context, new[:k]))
        stop = text[p - 1:p + 1]
        if p >= 3 and len(stop.strip()) == 2 and text.find(stop) == p - 1:
            return stop, text[:p + 1]
    raise AssertionError(f"no stop string spanning two tokens in {text!r}")


@pytest.mark.parametrize("options", [{}, {"do_sample": True}, {"positions": 12}], ids=["greedy", "sampling",
                                                                                        "sliding-window"])
def test_a_stop_string_spanning_two_tokens_ends_the_output(options):
    vocab = CharVocab.from_text(TEXT)
    model = _model(vocab, positions=options.pop("positions", 64))
    seeded = lambda: {**options, "generator": torch.Generator().manual_seed(3)}  # noqa: E731
    full = generate_text(model, vocab, "the ", 30, **seeded())
    assert len(set(full)) > 4, full  # a real test: the continuation is not one repeated character
    stop, expected = _spanning_stop(vocab, "the ", full)
    assert generate_text(model, vocab, "the ", 30, stop=[stop], **seeded()) == expected
    assert generate_text(model, vocab, "the ", 30, stop=stop, **seeded()) == expected  # one string as itself
    assert generate_text(model, vocab, "the ", 30, stop=["#never", stop], **seeded()) == expected


def test_the_other_sequences_of_the_batch_go_on():
    vocab = CharVocab.from_text(TEXT)
    model = _model(vocab)
    prompts = ["the ", "a cat", "over the lazy"]
    full = generate_text(model, vocab, prompts, 30)
    stop, expected = _spanning_stop(vocab, prompts[0], full[0])
    others = [text[:text.find(stop) + len(stop)] if stop in text else text for text in full[1:]]
    assert max(map(len, others)) > len(expected)  # a real test: another row writes on past the first one's stop
    assert generate_text(model, vocab, prompts, 30, stop=[stop]) == [expected, *others]


def test_beam_search_ends_a_hypothesis_at_a_stop_string():
    """A hypothesis that writes a stop string ends there, as at [EOS], and is scored as finished: with length
    penalty 0 (the sum of log p) the one that stops first wins; with 1 a longer one may, never holding the string."""
    vocab = CharVocab.from_text(TEXT)
    model = _model(vocab)
    full = generate_text(model, vocab, "the ", 30, num_beams=3, length_penalty=0.0)
    stop, expected = _spanning_stop(vocab, "the ", full)
    assert generate_text(model, vocab, "the ", 30, num_beams=3, length_penalty=0.0, stop=[stop]) == expected
    for text in generate_text(model, vocab, ["the ", "a cat", "over"], 30, num_beams=3, stop=[stop]):
        assert stop not in text[:-1], (stop, text)  # any occurrence is the last characters


def test_wordpiece_and_encoder_decoder_runs_stop_too():
    vocab = WordPieceVocab.train([TEXT] * 3, vocab_size=80, min_frequency=1)
    model = _model(vocab)
    full = generate_text(model, vocab, "the quick", 12)
    assert len(full.split()) > 2, full
    stop, expected = _spanning_stop(vocab, "the quick", full)
    assert generate_text(model, vocab, "the quick", 12, stop=[stop]) == expected

    chars = CharVocab.from_text(TEXT, specials=SPECIALS)
    seq2seq = _model(chars, "encoder-decoder", seed=1)
    full = generate_text(seq2seq, chars, "a lazy dog", 30)
    assert len(set(full)) > 4, full
    stop, expected = _spanning_stop(chars, "", full, eos=chars.bos_id)
    assert generate_text(seq2seq, chars, "a lazy dog", 30, stop=[stop]) == expected


def test_the_text_is_cut_after_the_stop_string_that_ends_first():
    """One token may write several characters, so two stop strings can both be in the text: the cut is after
    the one that ends first, whichever is listed first."""
    assert cut_at_stop("hello world", ["world", "lo"]) == "hello"
    assert cut_at_stop("hello world", ["lo", "world"]) == "hello"
    assert cut_at_stop("hello world", ["xyz"]) == "hello world"


def test_a_stop_string_in_the_prompt_does_not_end_the_output():
    """Only the new text is searched (OpenAI's rule): a prompt that holds the stop string is continued, and the
    output ends at the stop string's first place in the continuation."""
    vocab = CharVocab.from_text(TEXT)
    model = _model(vocab)
    full = generate_text(model, vocab, "the ", 30)
    stop = next(c for c in full[2:] if c.strip() and c not in full[:2])  # a character the model writes
    prompt = stop + " the "  # and the prompt holds
    continued = generate_text(model, vocab, prompt, 30)
    cut = generate_text(model, vocab, prompt, 30, stop=[stop])
    assert cut == cut_at_stop(continued, [stop]) and len(cut) > 1


@pytest.mark.parametrize("stop", [[""], ["ok", ""], [3]])
def test_an_empty_or_non_text_stop_string_is_refused(stop):
    vocab = CharVocab.from_text(TEXT)
    with pytest.raises(ConfigError, match="stop string"):
        generate_text(_model(vocab), vocab, "the ", 5, stop=stop)


def test_the_command_stops_at_stop_and_refuses_an_empty_one(monkeypatch, capsys, cli_error):
    from xformer.cli import main
    from xformer.commands import generate as command

    vocab = CharVocab.from_text(TEXT + "\n")
    model = _model(vocab)
    monkeypatch.setattr(command, "load_text_model", lambda run_dir, checkpoint: (model, vocab))
    full = generate_text(model, vocab, "the ", 30)
    stop, expected = _spanning_stop(vocab, "the ", full)
    assert main(["generate", "run", "--prompt", "the ", "--greedy", "--max-new-tokens", "30", "--stop", stop]) == 0
    assert capsys.readouterr().out == "the " + expected + "\n"
    assert main(["generate", "run", "--prompt", "the ", "--greedy", "--max-new-tokens", "30"]) == 0
    assert capsys.readouterr().out == "the " + full + "\n"  # without --stop it goes on
    cli_error(["generate", "run", "--prompt", "the ", "--stop", "x", "--stop", ""], "--stop", "empty")


def test_backslash_escapes_of_the_command_line_stop_string():
    """A shell passes --stop '\\n\\n' as four characters: read as two line breaks (llama.cpp's escapes)."""
    from xformer.generate_many import unescape

    assert unescape(r"\n\n") == "\n\n" and unescape(r"a\tb\\n") == "a\tb\\n" and unescape("plain") == "plain"
