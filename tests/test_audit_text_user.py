"""What an audit as a nanoGPT / Hugging Face user training on their own text found: a WordPiece LM on a text of
one long line, and messages for a folder or a missing tokenizer that did not say what was wrong. Tiny throughout."""
import pytest

from xformer.cli import main
from xformer.data.text import split_points, text_lm

WORDS = "the king said that the queen would come to the castle before night and all the lords rode out "


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


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    """A tiny text classifier trained for one step on a CSV of text,label."""
    folder = tmp_path_factory.mktemp("cls")
    rows = [f"{'a fine film' if i % 2 else 'a dull film'} {i},{'pos' if i % 2 else 'neg'}" for i in range(40)]
    (folder / "reviews.csv").write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    recipe = folder / "r.yaml"
    recipe.write_text(f"model: {{architecture: encoder, core: {{d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32}},\n"
                      "  tokenizer: {name: bert_text}, head: {name: classification, args: {pool: cls}}}\n"
                      f"data: {{name: text_classification, args: {{files: {folder / 'reviews.csv'}, "
                      "tokenizer: wordpiece, vocab_size: 60, min_frequency: 1, max_length: 16}}\n"
                      "train: {steps: 1, batch_size: 8, eval_every: 1}\n", encoding="utf-8")
    assert main(["train", str(recipe), "--out", str(folder / "run"), "--quiet"]) == 0
    return folder


def test_a_folder_given_as_a_table_is_called_a_folder(classifier_run, cli_error):
    """A folder of texts given to text_classification or to predict was said not to exist."""
    texts = classifier_run / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("a fine film\n", encoding="utf-8")
    run = str(classifier_run / "run")
    err = cli_error(["evaluate", run, f"data.args.files={texts}", "data.args.test_fraction=1",
                    "data.args.val_fraction=0"])
    assert "is a folder" in err and "does not exist" not in err
    err = cli_error(["predict", run, str(texts)])
    assert "is a folder" in err and "does not exist" not in err


def test_a_tokenizer_folder_that_is_not_there_names_the_fix(classifier_run, cli_error):
    """tasks/bert_classify.yaml before its pre-training run: 'is neither char, wordpiece nor a folder holding a
    saved tokenizer' said neither that the folder is missing nor how to make one."""
    err = cli_error(["train", str(classifier_run / "r.yaml"), f"data.args.tokenizer={classifier_run}/nope",
                    "--out", str(classifier_run / "run2"), "--quiet"])
    assert "does not exist" in err and "xformer tokenizer train" in err and "wordpiece" in err


@pytest.mark.parametrize("given", ["notes/*.txt", "a.txt,b.txt"])
def test_a_pattern_or_a_comma_list_of_files_names_the_list_form(tmp_path, given):
    """data.args.files=notes/*.txt (Hugging Face's data_files takes patterns) or =a.txt,b.txt was 'text file ...
    does not exist; give existing UTF-8 text files', not saying how to give several."""
    from xformer.config import ConfigError
    from xformer.data.corpus import read_text_files

    with pytest.raises(ConfigError, match=r"does not exist.*\[a\.txt, b\.txt\].*folder"):
        read_text_files([str(tmp_path / given)])
