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
