"""`xformer generate`: sampling, --greedy and beam search are three decodings; an option of one given with
another is refused in one line (Hugging Face's generate warns and ignores it)."""
import pytest

from xformer.cli import main


@pytest.mark.parametrize("options, words", [
    (["--greedy", "--num-beams", "3"], "--greedy and --num-beams 3 are two decodings"),
    (["--greedy", "--temperature", "0.5"], "--temperature 0.5 shapes sampling, which --greedy does not do"),
    (["--num-beams", "2", "--top-k", "5", "--top-p", "0.9"], "--top-k 5 --top-p 0.9 shape sampling"),
    (["--length-penalty", "2"], "--length-penalty 2.0 scores beam search only"),
    (["--prompt-file", "."], "is a folder"),
])
def test_generate_refuses_options_of_another_decoding(options, words, tmp_path, capsys):
    """Checked before the run is read: the folder need not exist for the line to name the options."""
    assert main(["generate", str(tmp_path / "no_run"), *options]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1, err


def test_repeat_rules_hold_when_the_window_slides():
    """Past the model's positions greedy decoding slides its window; the n-gram ban still reads the whole text
    (prompt and every new token), as Hugging Face's processors read all of input_ids."""
    import torch

    from xformer import CoreConfig, ModelConfig, PartConfig, build_model
    from xformer.data.vocab import CharVocab
    from xformer.generation import generate_text

    torch.manual_seed(0)
    vocab = CharVocab("abcdefghijklmnopqrstuvwxyz0123")
    model = build_model(ModelConfig("decoder", CoreConfig(d_model=16, n_layers=1, n_heads=2),
                                    PartConfig("text", {"vocab_size": vocab.vocab_size, "max_positions": 8}),
                                    PartConfig("causal_lm")))
    plain = generate_text(model, vocab, "ab", 20)
    once = generate_text(model, vocab, "ab", 20, no_repeat_ngram_size=1)
    assert len(set("ab" + plain)) < 22 and len(set("ab" + once)) == 22  # 20 new tokens past a window of 8
    assert generate_text(model, vocab, "ab", 20, repetition_penalty=3.0) != plain


@pytest.mark.parametrize("options", [["--repetition-penalty", "0"], ["--repetition-penalty", "inf"],
                                     ["--no-repeat-ngram-size", "-1"]])
def test_generate_refuses_a_bad_repetition_rule(options, tmp_path, capsys):
    assert main(["generate", str(tmp_path / "no_run"), *options]) == 2
    err = capsys.readouterr().err
    assert "--repetition-penalty > 0" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("head, words", [("classification", "xformer predict RUN TEXTS gives its classes"),
                                         ("masked_lm", "pre-trained to fine-tune.*xformer predict RUN .* fills its "
                                                       "masks")])
def test_an_encoder_run_is_refused_naming_what_it_is_for(head, words):
    from xformer import CoreConfig, ModelConfig, PartConfig, build_model
    from xformer.config import ConfigError
    from xformer.data.vocab import CharVocab
    from xformer.generation import generate_text

    vocab = CharVocab.from_text("abc ")
    args = {"n_classes": 2} if head == "classification" else {}
    model = build_model(ModelConfig("encoder", CoreConfig(d_model=8, n_layers=1, n_heads=2, d_ff=16),
                                    PartConfig("text", {"vocab_size": vocab.vocab_size}), PartConfig(head, args)))
    with pytest.raises(ConfigError, match=f"needs a decoder or encoder-decoder model, not Encoder .*{words}"):
        generate_text(model, vocab, "ab", 3)
