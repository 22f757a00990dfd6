"""`xformer compare` as a researcher uses it: their own files, typos in the options, a resume from another
directory, and a report whose every number says what it is and where it came from."""
import json
import re
import signal
import sys

import pytest
from PIL import Image

import xformer
from xformer.cli import main

TINY = ["--steps", "2", "--d-model", "8", "--layers", "1", "--heads", "2", "--batch-size", "4", "--quiet"]


def write_images(root, splits=(("train", 6),)):
    for split, n in splits:
        for k, name in enumerate(("cat", "dog")):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.new("RGB", (8, 8), (120 * k, 20 * i, 60)).save(root / split / name / f"{i}.png")


def one_line_error(capsys, argv) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_a_zero_feed_forward_width_is_refused_not_replaced(tmp_path, capsys):
    """--d-ff 0 used to train silently with d_ff = 2 x d_model (0 is falsy)."""
    err = one_line_error(capsys, ["compare", *TINY, "--d-ff", "0", "--domains", "images", "--out", str(tmp_path / "o")])
    assert "--d-ff must be >= 1, got 0" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("option, values, domain", [
    ("--classify-data", ["train.tsv"], "classify"), ("--text-data", ["notes.txt"], "text"),
    ("--series-data", ["s.csv"], "series"), ("--image-data", ["mnist"], "images")])
def test_data_for_a_domain_left_out_is_refused(tmp_path, capsys, monkeypatch, option, values, domain):
    """`xformer compare --classify-data X.tsv` (classify is not a default domain) used to train text, images and
    series for hours and never read X.tsv."""
    monkeypatch.chdir(tmp_path)
    for name in ("train.tsv", "notes.txt", "s.csv"):
        (tmp_path / name).write_text("1\t0.5\t0.25\n")
    others = [d for d in ("text", "images", "series", "classify") if d != domain]
    err = one_line_error(capsys, ["compare", *TINY, "--domains", ",".join(others[:2]), option, *values])
    assert f"{option} is data for the {domain} domain" in err and f"--domains {','.join(others[:2])},{domain}" in err
    assert not (tmp_path / "compare").exists()


def test_a_csv_without_a_date_column_is_refused_in_compare_s_terms(tmp_path, capsys):
    """The fix used to be 'set date_column', an option compare does not have."""
    path = tmp_path / "mine.csv"
    path.write_text("Date,x\n" + "".join(f"2020-01-{1 + i // 24:02d} {i % 24:02d}:00,{i % 7}\n" for i in range(240)))
    err = one_line_error(capsys, ["compare", *TINY, "--domains", "series", "--series-data", str(path),
                                  "--out", str(tmp_path / "o")])
    assert "no date column 'date'" in err and "'Date'" in err
    assert "date_column" not in err and "rename" in err and "unique_id, ds, y" in err


def test_a_compare_of_relative_paths_resumes_from_another_directory(tmp_path, capsys, monkeypatch):
    """Started in one directory with --image-data imgs, stopped by Ctrl-C, resumed from another directory."""
    from xformer.train.trainer import Trainer

    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    write_images(work / "imgs", (("train", 6), ("test", 2)))
    elsewhere.mkdir()
    monkeypatch.chdir(work)
    step, taken = Trainer._step, []

    def stopped_in_the_second_run(self, batches):
        out = step(self, batches)
        taken.append(1)
        if len(taken) == 3:
            signal.raise_signal(signal.SIGINT)
        return out

    monkeypatch.setattr(Trainer, "_step", stopped_in_the_second_run)
    assert main(["compare", *TINY, "--domains", "images", "--image-data", "imgs", "--out", "report"]) == 130
    monkeypatch.setattr(Trainer, "_step", step)
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["compare", "--resume", str(work / "report"), "--quiet"]) == 0, capsys.readouterr().err
    results = json.loads((work / "report" / "results.json").read_text())
    assert results["config"]["image_data"] == str(work / "imgs")
    assert str(work / "imgs") in results["domains"]["images"]["data"]["source"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Two budgets, two seeds, an image folder without test/ (ranked on validation)."""
    root = tmp_path_factory.mktemp("audit")
    write_images(root / "imgs")
    out = root / "report"
    assert main(["compare", *TINY, "--domains", "images", "--image-data", str(root / "imgs"), "--budgets", "1,2",
                 "--seeds", "2", "--out", str(out)]) == 0
    return out


def test_the_report_says_how_to_reproduce_it(study):
    results = json.loads((study / "results.json").read_text())
    command = results["command"]
    assert command.startswith("xformer compare --domains images --steps 2 ")
    for option in ("--d-model 8", "--layers 1", "--heads 2", "--batch-size 4", "--budgets 1,2", "--seeds 2",
                   f"--out {study}"):
        assert option in command, option
    assert "--d-ff" not in command  # the default, 2 x d_model
    versions = results["versions"]
    assert versions["xformer"] == xformer.__version__ and versions["python"] == sys.version.split()[0]
    assert versions["torch"] and results["device"] == "cpu"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d [+-]\d{4}", results["date"])  # with its time zone
    md = (study / "report.md").read_text()
    for piece in (command, f"xformer {xformer.__version__}", f"Python {versions['python']}", "device cpu"):
        assert piece in md, piece
    assert "device cpu" in (study / "report.html").read_text()


def test_every_table_and_figure_says_its_metric_split_seeds_and_run(study):
    md = (study / "report.md").read_text()
    note = md.split("## images: by budget")[1].split("## ")[0]
    assert "val_accuracy" in note and "validation split" in note and "2 seeds" in note
    captions = [line for line in md.splitlines() if line.startswith("*") and line.endswith("*")]
    budgets = next(c for c in captions if "training FLOPs" in c)
    assert "Test metric" not in budgets and "2 seeds" in budgets
    for caption in captions:
        if "against training FLOPs" not in caption:
            assert "seed 0" in caption.lower() and "2 steps" in caption, caption


def test_a_data_fix_compare_cannot_take_says_so(tmp_path, capsys):
    """A gap in a series CSV, series of unequal lengths in a UCR file: the data's fix, data.args.missing=..., is an
    argument of xformer train that compare does not accept, so both lines say the fix in compare's terms first
    (fill the gaps in the file), then train's."""
    gap = tmp_path / "gap.csv"
    gap.write_text("date,x\n" + "".join(f"2020-01-{1 + i // 24:02d} {i % 24:02d}:00,{'' if i == 50 else i % 7}\n"
                                        for i in range(400)))
    ragged = tmp_path / "ragged.tsv"
    ragged.write_text("".join(f"{i % 2}\t" + "\t".join(map(str, range(20 + i % 3))) + "\n" for i in range(40)))
    for argv, fix in ((["--domains", "series", "--series-data", str(gap)],
                       "fill them in the file, or train on it with xformer train ... data.args.missing=interpolate"),
                      (["--domains", "classify", "--classify-data", str(ragged)],
                       "fill them in the file, or train on it with xformer train ... data.args.missing=ffill")):
        err = one_line_error(capsys, ["compare", *TINY, *argv, "--out", str(tmp_path / "o")])
        assert "missing" in err and fix in err and "xformer train" in err, err
    assert not (tmp_path / "o").exists()
