"""A folder in data.args.files (and in `xformer tokenizer train`) is its .txt files, as Hugging Face's
load_dataset("text", data_dir=...) reads one: sub-folders and compressed .txt.gz too, in path order, hidden
entries and other files skipped; a folder without text and a run folder inside the data are one line."""
import gzip
import json
from pathlib import Path

import yaml

from xformer.cli import main
from xformer.data.corpus import read_text_files

TINY = {"model": {"architecture": "decoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
                  "tokenizer": {"name": "text"}, "head": {"name": "causal_lm"}},
        "train": {"steps": 2, "batch_size": 4, "eval_every": 2, "log_every": 1}}


def notes(root: Path) -> Path:
    folder = root / "notes"
    (folder / "b_sub" / ".cache").mkdir(parents=True)
    (folder / "a.txt").write_text("first file\nof notes\n" * 20)
    (folder / "b_sub" / "c.txt.gz").write_bytes(gzip.compress(b"a compressed one\n" * 20))
    (folder / "b_sub" / ".cache" / "x.txt").write_text("hidden: never read\n")
    (folder / ".draft.txt").write_text("hidden: never read\n")
    (folder / "d.txt").write_text("last words\n" * 20)
    (folder / "readme.md").write_text("# not text to train on\n")
    return folder


def test_a_folder_reads_as_its_text_files_in_path_order(tmp_path):
    folder = notes(tmp_path)
    listed = [folder / "a.txt", folder / "b_sub" / "c.txt.gz", folder / "d.txt"]
    assert read_text_files(folder) == read_text_files(listed) == read_text_files([str(folder)])
    assert "hidden" not in read_text_files(folder) and "#" not in read_text_files(folder)


def test_a_language_model_and_a_tokenizer_learn_from_a_folder(tmp_path, capsys):
    folder = notes(tmp_path)
    for files, run in ((str(folder), "from_folder"), ([str(folder / "a.txt"), str(folder / "b_sub" / "c.txt.gz"),
                                                       str(folder / "d.txt")], "from_files")):
        recipe = tmp_path / f"{run}.yaml"
        recipe.write_text(yaml.safe_dump({**TINY, "data": {"name": "text_lm", "args": {"files": files,
                                                                                       "block_size": 8}}}))
        assert main(["train", str(recipe), "--out", str(tmp_path / run), "--quiet"]) == 0
    capsys.readouterr()
    folder_metrics, files_metrics = (json.loads((tmp_path / r / "metrics.json").read_text())
                                     for r in ("from_folder", "from_files"))
    assert folder_metrics["val_loss"] == files_metrics["val_loss"]  # the same text, the same seeded run
    assert main(["tokenizer", "train", str(folder), "--vocab-size", "60", "--out", str(tmp_path / "tok")]) == 0
    assert (tmp_path / "tok" / "vocab.txt").is_file()


def test_a_folder_without_text_and_a_run_inside_the_text_folder_are_one_line(tmp_path, capsys):
    folder = notes(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "x.png").write_bytes(b"\x89PNG")
    for files, out, words in (
            (str(tmp_path / "images"), tmp_path / "run", "the folder " + str(tmp_path / "images") +
             " holds no .txt files"),
            (str(folder), folder / "run", "is inside data.args.files")):
        recipe = tmp_path / "r.yaml"
        recipe.write_text(yaml.safe_dump({**TINY, "data": {"name": "text_lm", "args": {"files": files}}}))
        assert main(["train", str(recipe), "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err and "Traceback" not in err, err
        assert not out.exists()
