"""What an audit as a nanoGPT / Hugging Face user training on their own text found: a WordPiece LM on a text of
one long line, and messages for a folder or a missing tokenizer that did not say what was wrong. Tiny throughout."""
import pytest

from xformer.cli import main
from xformer.data.text import split_points, text_lm

WORDS = "the king said that the queen would come to the castle before night and all the lords rode out "


def error_line(capsys, argv):
    """Run the CLI; return its stderr, which must be exactly one `xformer: error:` line with exit status 2."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("xformer: error: ") and err.count("\n") == 1, err
    return err


def test_a_text_of_one_line_gets_val_and_test_parts(tmp_path):
    """A scraped book or a dump on one line, ending with a newline: the cuts moved past the next line break, to
    the end of the text, and left val and test empty ("a val / test part holds no tokens; give more text")."""
    text = WORDS * 60 + "\n"
    path = tmp_path / "one_line.txt"
    path.write_text(text, encoding="utf-8")
    data = text_lm(files=str(path), tokenizer="wordpiece", vocab_size=100, min_frequency=1, block_size=8,
                   val_fraction=0.1, test_fraction=0.05)
    assert len(data.val) > 0 and len(data.test) > 0
    bounds = split_points(text, 0.1, 0.05, snap_to_lines=True)
    assert bounds[0] < bounds[1] < bounds[2] < bounds[3] == len(text)
    assert all(text[c - 1] == " " for c in bounds[1:3])  # cut between words, not inside one
    # texts of several lines still cut just past a line break, as before
    lines = (WORDS + "\n") * 40
    assert all(lines[c - 1] == "\n" for c in split_points(lines, 0.1, 0.05, snap_to_lines=True)[1:3])
