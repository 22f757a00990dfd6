"""`xformer compare`'s loose ends: numbers of seconds that are none (inf, nan), a domain given twice, a folder
where a file was wanted, the data's errors said in compare's options rather than in xformer train's
data.args, and the way on from a finished or stopped report."""
import json
import math
import re

import pytest
from PIL import Image

from xformer.cli import main
from xformer.compare import CompareConfig
from xformer.config import ConfigError

TINY = ["--steps", "2", "--d-model", "8", "--layers", "1", "--heads", "2", "--batch-size", "4", "--quiet"]
TRAIN_TERMS = ("data.args", "block_size", "input_len", "horizon=", "columns=[", "date_column", "test_path",
               "val_fraction", "image_folder:")  # what xformer train's recipes say; compare has options instead


def series_csv(path, rows, extra_column=False):
    head = "date,x" + (",name" if extra_column else "")
    path.write_text(head + "\n" + "".join(f"2020-01-{1 + i // 24:02d} {i % 24:02d}:00,{i % 7}"
                                          + (",abc" if extra_column else "") + "\n" for i in range(rows)))
    return path


def refused(cli_error, tmp_path, argv, *words) -> str:
    """The compare refused in one line holding ``words``, before it wrote anything."""
    err = cli_error(["compare", *TINY, *argv, "--out", tmp_path / "o"], *words)
    assert not (tmp_path / "o").exists()
    return err


@pytest.mark.parametrize("argv, words", [
    (["--seconds", "inf"], ["--seconds takes a finite number of seconds > 0", "got inf"]),
    (["--seconds", "nan"], ["--seconds takes a finite number of seconds > 0", "got nan"]),
    (["--seconds", "0"], ["--seconds takes a finite number of seconds > 0", "got 0"]),
    (["--seconds", "-1"], ["--seconds takes a finite number of seconds > 0", "got -1"]),
    (["--budget-seconds", "inf"], ["--budget-seconds takes distinct positive numbers of seconds", "got inf"]),
    (["--budget-seconds", "1e400"], ["--budget-seconds takes distinct positive numbers of seconds", "got inf"]),
    (["--budget-seconds", "nan,1"], ["--budget-seconds takes distinct positive numbers of seconds", "got nan,1"]),
    (["--budget-seconds=-1,2"], ["--budget-seconds takes distinct positive numbers of seconds", "got -1,2"]),
    (["--budget-seconds", "0"], ["--budget-seconds takes distinct positive numbers of seconds", "got 0"]),
    (["--budget-seconds", "5,x"], ["--budget-seconds takes distinct positive numbers of seconds", "got '5,x'"]),
    (["--budgets", "0"], ["--budgets takes distinct positive numbers of steps", "got 0"]),
    (["--budgets=-5"], ["--budgets takes distinct positive numbers of steps", "got -5"]),
    (["--budgets", "1.5"], ["--budgets takes distinct positive numbers of steps", "whole", "got '1.5'"]),
    (["--budgets", "inf"], ["--budgets takes distinct positive numbers of steps", "got 'inf'"]),
    (["--budgets", ","], ["--budgets takes distinct positive numbers of steps", "got nothing"]),
    (["--budgets", "2,2"], ["--budgets takes distinct positive numbers of steps", "got 2,2"]),
    (["--steps", "0"], ["--steps must be >= 1, got 0"]),
    (["--seconds", "5", "--budget-seconds", "10,20"], ["--seconds", "--budget-seconds", "not both"]),
])
def test_a_number_of_steps_or_seconds_that_is_none_is_refused(tmp_path, cli_error, argv, words):
    """--seconds inf and --budget-seconds inf used to train as if no cap were given (and wrote Infinity, which is
    no JSON, into compare.json); --seconds beside --budget-seconds was silently ignored."""
    err = refused(cli_error, tmp_path, ["--domains", "seq2seq", *argv], *words)
    assert "--seconds" not in err or "--steps" not in err, err  # the line names the one option at fault


def test_the_python_api_refuses_the_same_numbers():
    for options in ({"seconds": math.inf}, {"budget_seconds": [10, math.inf]}, {"budgets": [1.5]},
                    {"domains": ["text", "text"]}):
        with pytest.raises(ConfigError):
            CompareConfig(device="cpu", **options)


@pytest.mark.parametrize("domains, words", [
    ("text,text", ["--domains names text twice", "give each domain once", "--domains text"]),
    ("images,seq2seq,images", ["--domains names images twice", "--domains images,seq2seq"]),
    (",", ["--domains names no domain", "text, images, series, seq2seq, classify"]),
    ("", ["--domains names no domain", "text, images, series, seq2seq, classify"]),
    ("text,audio", ["unknown domain(s) ['audio']", "text, images, series, seq2seq, classify"]),
])
def test_domains_are_each_named_once_from_the_valid_ones(tmp_path, cli_error, domains, words):
    """--domains text,text used to train the text domain once but record text,text as the report's options."""
    refused(cli_error, tmp_path, ["--domains", domains], *words)


def test_a_folder_of_text_files_is_read_as_xformer_train_reads_one(tmp_path, capsys):
    """--text-data FOLDER used to be refused as 'data file not found', though the text reader reads a folder's
    .txt files (sub-folders too, in the order of their paths), as data.args.files=[FOLDER] does in xformer train."""
    folder = tmp_path / "texts"
    (folder / "more").mkdir(parents=True)
    (folder / "a.txt").write_text("to be or not to be, that is the question. " * 30)
    (folder / "more" / "b.txt").write_text("whether 'tis nobler in the mind to suffer. " * 30)
    out = tmp_path / "report"
    assert main(["compare", *TINY, "--domains", "text", "--text-data", str(folder), "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["text_data"] == [str(folder)]
    data = results["domains"]["text"]["data"]
    assert data["name"] == "texts" and data["source"] == str(folder)
    total = sum(n for n in data["sizes"].values())  # train windows + characters scored in val and test
    assert total > len((folder / "a.txt").read_text())  # both files were read


def test_a_report_inside_a_data_folder_is_refused_before_any_run(tmp_path, cli_error, monkeypatch):
    """Its runs' files would be read as data by the next run: xformer train refused that only after the compare
    had started, in its own terms (data.args.files)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text("to be or not to be, that is the question. " * 30)
    (tmp_path / "imgs" / "train" / "cat").mkdir(parents=True)
    for argv, option in ((["--domains", "text", "--text-data", "."], "--text-data"),
                         (["--domains", "images", "--image-data", "imgs"], "--image-data")):
        out = "report" if option == "--text-data" else "imgs/report"
        err = cli_error(["compare", *TINY, *argv, "--out", out], f"--out {out} is inside {option}",
                        "give a report folder outside it")
        assert "data.args" not in err and not (tmp_path / out).exists()


def test_a_folder_without_text_files_is_one_line(tmp_path, cli_error):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.md").write_text("# notes\n" * 200)
    refused(cli_error, tmp_path, ["--domains", "text", "--text-data", tmp_path / "notes"], "holds no .txt files")


def test_a_folder_given_for_a_file_is_said_so_with_the_files_to_give(tmp_path, cli_error):
    series, ucr, empty = tmp_path / "etth", tmp_path / "FordA", tmp_path / "nothing"
    for folder in (series, ucr, empty):
        folder.mkdir()
    series_csv(series / "ETTh1.csv", 300)
    for name in ("FordA_TRAIN.tsv", "FordA_TEST.tsv"):
        (ucr / name).write_text("1\t0.5\t0.25\n")
    refused(cli_error, tmp_path, ["--domains", "series", "--series-data", series],
            f"--series-data {series} is a folder", f"--series-data {series / 'ETTh1.csv'}")
    refused(cli_error, tmp_path, ["--domains", "series", "--series-data", empty],
            f"--series-data {empty} is a folder", "CSV or Parquet file")
    refused(cli_error, tmp_path, ["--domains", "classify", "--classify-data", ucr], f"--classify-data {ucr} is a "
            f"folder", f"--classify-data {ucr / 'FordA_TRAIN.tsv'} {ucr / 'FordA_TEST.tsv'}")
    refused(cli_error, tmp_path, ["--domains", "text", "--text-data", tmp_path / "nope.txt"],
            f"--text-data {tmp_path / 'nope.txt'}: data file not found")


def test_an_image_folder_that_is_none_says_what_it_is(tmp_path, cli_error, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "pictures" / "cat").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "pictures" / "cat" / "0.png")
    wanted = "give a folder with train/<class>/ images"
    refused(cli_error, tmp_path, ["--domains", "images", "--image-data", "a.csv"], "--image-data a.csv is a file",
            wanted)
    refused(cli_error, tmp_path, ["--domains", "images", "--image-data", "nope"], "--image-data nope: no such folder",
            wanted, "digits, mnist, fashion_mnist, cifar10")
    refused(cli_error, tmp_path, ["--domains", "images", "--image-data", "MNIST"], "no such folder",
            "did you mean mnist?")
    refused(cli_error, tmp_path, ["--domains", "images", "--image-data", "pictures"],
            "--image-data pictures holds no train/ folder", wanted)


def no_train_terms(err: str) -> None:
    assert not [term for term in TRAIN_TERMS if term in err], err


def test_text_too_short_is_said_in_characters_of_compare_s_windows(tmp_path, cli_error):
    short = tmp_path / "short.txt"
    short.write_text("hi\n")
    err = refused(cli_error, tmp_path, ["--domains", "text", "--text-data", short], "the training part has 2 "
                  "characters, fewer than one window of 65 characters", "give more text", "first 80%")
    no_train_terms(err)


@pytest.mark.parametrize("domain, data, message, words", [
    ("text", "text_lm", "an evaluation split needs at least block_size + 1 = 65 tokens of text before its end; give "
     "more text or a smaller block_size", ["at least 65 characters of text", "give more text (", "10% for validation"]),
    ("text", "text_lm", "a val / test part holds no tokens; give more text or a larger val_fraction / test_fraction",
     ["give more text ("]),
    ("series", "csv_series", "the data has 30 rows a day; give rows_per_day=30",  # a message written after this test
     ["xformer compare takes no data.args (here rows_per_day)", "xformer train"]),
    ("series", "csv_series", "a split of 50 rows is too short for input_len=96 + horizon=24",
     ["too short for --input-len 96 + --horizon 24"]),
    ("classify", "series_classification", "data.args.test_path needs data.args.path (the training file)",
     ["the TEST file", "--classify-data TRAIN"]),
])
def test_data_args_are_said_as_compare_s_options_whatever_the_wording(domain, data, message, words):
    """The rewrite reads the dataset's own argument names, so a message worded in a way no rule foresaw still
    says what compare takes."""
    from xformer.compare.terms import in_compare_terms
    from xformer.data.registry import build_data

    with pytest.raises(ConfigError):  # the datasets registered, as when compare builds its data
        build_data("nothing")
    said = in_compare_terms(message, domain, data)
    for word in words:
        assert word in said, (word, said)
    if "xformer train" not in said:
        no_train_terms(said)


def test_a_series_too_short_names_compare_s_input_len_and_horizon(tmp_path, cli_error):
    err = refused(cli_error, tmp_path, ["--domains", "series", "--series-data", series_csv(tmp_path / "s.csv", 60)],
                  "too short for --input-len 96 + --horizon 24", "a shorter --input-len / --horizon")
    no_train_terms(err)


def test_a_csv_with_a_text_column_or_no_rows_is_fixed_in_the_file(tmp_path, cli_error):
    """The fix used to be columns=[...], an argument compare does not take. A CSV of only its header said its
    column held no value at all, to be dropped: it has no rows."""
    header = tmp_path / "header.csv"
    header.write_text("date,x\n")
    for path, words in ((series_csv(tmp_path / "t.csv", 200, extra_column=True),
                         ["non-numeric value 'abc'", "keep only the date and value columns in the file"]),
                        (header, [f"{header} has no rows", "give it the series' values"])):
        err = refused(cli_error, tmp_path, ["--domains", "series", "--series-data", path], *words)
        no_train_terms(err)


def test_a_ucr_file_too_small_for_a_test_split_names_the_test_file_option(tmp_path, cli_error):
    path = tmp_path / "two.tsv"
    path.write_text("0\t1\t2\t3\n1\t2\t3\t4\n")
    err = refused(cli_error, tmp_path, ["--domains", "classify", "--classify-data", path], "have one series each",
                  "--classify-data TRAIN", "--classify-data TRAIN TEST")
    no_train_terms(err)


def test_image_data_errors_name_the_option_and_where_compare_reads(tmp_path, cli_error, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flat" / "train").mkdir(parents=True)
    err = refused(cli_error, tmp_path, ["--domains", "images", "--image-data", "mnist"], "mnist files not found",
                  "./data of the folder it runs in")
    no_train_terms(err)
    err = refused(cli_error, tmp_path, ["--domains", "images", "--image-data", "flat"],
                  f"--image-data {tmp_path / 'flat' / 'train'} holds no class folders")
    no_train_terms(err)


def test_a_data_fix_compare_cannot_take_names_the_argument(tmp_path, cli_error):
    gap = tmp_path / "gap.csv"
    gap.write_text("date,x\n" + "".join(f"2020-01-{1 + i // 24:02d} {i % 24:02d}:00,{'' if i == 50 else i % 7}\n"
                                        for i in range(400)))
    refused(cli_error, tmp_path, ["--domains", "series", "--series-data", gap],
            "fill them in the file, or train on it with xformer train ... data.args.missing=interpolate (or ffill)")


def test_the_way_on_from_a_finished_or_a_stopped_report(tmp_path, cli_error):
    """A finished report used to be answered with '--overwrite it' to --resume, which refuses any other option,
    and a folder that is no compare's with 'continue a stopped compare with --resume'."""
    images, out = tmp_path / "imgs", tmp_path / "report"
    for k, name in enumerate(("cat", "dog")):
        for split, n in (("train", 6), ("test", 2)):
            (images / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.new("RGB", (8, 8), (120 * k, 20 * i, 60)).save(images / split / name / f"{i}.png")
    mine = ["--domains", "images", "--image-data", str(images)]
    assert main(["compare", *TINY, *mine, "--out", str(out)]) == 0
    again = (f"xformer compare --domains images --steps 2 --d-model 8 --layers 1 --heads 2 --batch-size 4 "
             f"--image-data {images} --out {out}")
    err = cli_error(["compare", "--resume", out], "holds a finished report (results.json), there is nothing to resume",
                    f"{again} --overwrite")
    assert "--resume" not in err.split("nothing to resume")[1]
    err = cli_error(["compare", *TINY, *mine, "--out", out], "already holds files", "--overwrite")
    assert "--resume" not in err  # finished: nothing to continue
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    err = cli_error(["compare", *TINY, "--out", tmp_path / "mine"], "already holds files")
    assert "--resume" not in err
    cli_error(["compare", "--resume", tmp_path / "nope"], f"cannot resume {tmp_path / 'nope'}: no such folder")


def test_a_stopped_compare_whose_data_moved_says_so_before_it_goes_on(tmp_path, cli_error):
    data = series_csv(tmp_path / "mine.csv", 200)
    out = tmp_path / "report"
    (out / "runs").mkdir(parents=True)
    config = CompareConfig(domains=["series"], series_data=str(data), input_len=16, horizon=4, device="cpu")
    (out / "compare.json").write_text(json.dumps(config.__dict__))
    data.rename(tmp_path / "moved.csv")
    err = cli_error(["compare", "--resume", out], f"cannot resume {out}", f"--series-data {data}: data file not found")
    assert re.search(r"started with \(.*compare\.json\)", err), err
