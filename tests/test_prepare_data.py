"""data/*/prepare.py on tiny local inputs (offline), memory-mapped token files (`token_file`): the same
windows and ids as `text_lm`, training through `xformer train`, flat memory on a larger file, one-line errors;
image folders read lazily by DataLoader workers."""
from __future__ import annotations

import importlib.util
import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from xformer.cli import main
from xformer.data.corpus import default_corpus
from xformer.data.text import text_lm
from xformer.data.token_file import TokenWriter, token_file, write_meta, write_text_corpus
from xformer.data.vocab import CharVocab, WordPieceVocab, load_vocab
from xformer.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
TEXT = default_corpus()[:6000]  # real prose, offline
CORE = {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32}
TEXT_MODEL = {"architecture": "decoder", "core": CORE, "tokenizer": {"name": "text"}, "head": {"name": "causal_lm"}}
IMAGE_MODEL = {"architecture": "encoder", "core": CORE,
               "tokenizer": {"name": "image_patches", "args": {"patch_size": 4}}, "head": {"name": "classification"}}


def script(name: str):
    spec = importlib.util.spec_from_file_location(f"prepare_{name}", ROOT / "data" / name / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def train(tmp_path, data: dict, *overrides: str, run: str = "run") -> int:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"model": TEXT_MODEL if data["name"] == "token_file" else IMAGE_MODEL,
                                      "data": data, "train": {"steps": 3, "batch_size": 4, "device": "cpu",
                                                              "eval_batches": 2}}))
    return main(["train", str(recipe), *overrides, "--out", str(tmp_path / run)])


def same_items(a, b) -> None:
    assert len(a) == len(b)
    for k in range(len(a)):
        assert torch.equal(a[k]["input_ids"], b[k]["input_ids"]) and torch.equal(a[k]["labels"], b[k]["labels"])


# ---------------------------------------------------------------- text corpora


def test_shakespeare_char_writes_nanogpt_files_that_read_back_as_text_lm_windows(tmp_path, capsys):
    source = write(tmp_path / "input.txt", TEXT)
    meta = script("shakespeare_char").main([str(source), "--out", str(tmp_path / "sc")])
    n, a = len(TEXT), int(len(TEXT) * 0.9)
    assert meta["dtype"] == "uint16" and meta["tokens"] == {"train": a, "val": n - a}
    assert meta["chars"] == "".join(sorted(set(TEXT))) and meta["vocab_size"] == len(set(TEXT))
    vocab = load_vocab(tmp_path / "sc" / "tokenizer")
    ids = np.fromfile(tmp_path / "sc" / "train.bin", dtype=np.uint16)
    assert vocab.decode(ids.tolist()) == TEXT[:a]
    assert vocab.decode(np.fromfile(tmp_path / "sc" / "val.bin", dtype=np.uint16).tolist()) == TEXT[a:]

    files = token_file(str(tmp_path / "sc"), block_size=16)
    reference = text_lm(files=str(source), block_size=16)
    same_items(files.train, reference.train)  # every offset, the same ids
    same_items(files.val, reference.val)  # every val character scored once, the first with train's last as context
    assert vocab.decode(files.train[100]["input_ids"].tolist()) == TEXT[100:116]
    assert files.loss_metrics("val", 1.5) == reference.loss_metrics("val", 1.5)


def test_a_wordpiece_corpus_learned_or_reused_and_uint32_for_a_large_vocabulary(tmp_path):
    source = write(tmp_path / "corpus.txt", TEXT)
    prepare = script("wordpiece_corpus")
    meta = prepare.main([str(source), "--vocab-size", "300", "--min-frequency", "1", "--out", str(tmp_path / "wp"),
                         "--test-fraction", "0.1"])
    assert meta["tokenizer"] == "wordpiece" and meta["dtype"] == "uint16" and set(meta["tokens"]) == {"train", "val",
                                                                                                      "test"}
    saved = tmp_path / "wp" / "tokenizer"
    # the learned vocabulary reused (WordPiece training itself may break ties differently run to run)
    again = prepare.main([str(source), "--tokenizer", str(saved), "--out", str(tmp_path / "wp2"), "--test-fraction",
                          "0.1"])
    assert again["tokens"] == meta["tokens"]
    reference = text_lm(files=str(source), tokenizer=str(saved), block_size=8, test_fraction=0.1)
    files = token_file(str(tmp_path / "wp2"), block_size=8)
    for split in ("train", "val", "test"):
        same_items(getattr(files, split), getattr(reference, split))
    vocab = load_vocab(saved)
    assert isinstance(vocab, WordPieceVocab) and vocab.eos_id in np.fromfile(tmp_path / "wp2" / "train.bin", np.uint16)

    wide = "".join(chr(0x10000 + i) for i in range(70_000)) * 2  # 70,000 symbols: ids past uint16
    meta = write_text_corpus(tmp_path / "wide", wide, "char")
    assert meta["dtype"] == "uint32" and (tmp_path / "wide" / "train.bin").stat().st_size == 4 * meta["tokens"]["train"]
    item = token_file(str(tmp_path / "wide"), block_size=4).train[69_990]
    assert item["input_ids"].tolist() == [69_990, 69_991, 69_992, 69_993] and item["labels"][-1] == 69_994


def test_a_memmapped_corpus_trains_through_xformer_train(tmp_path, capsys):
    script("shakespeare_char").main([str(write(tmp_path / "input.txt", TEXT)), "--out", str(tmp_path / "sc")])
    data = {"name": "token_file", "args": {"path": str(tmp_path / "sc"), "block_size": 16}}
    assert train(tmp_path, data, "train.num_workers=2") == 0  # worker processes open the file themselves
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert np.isfinite(metrics["val_loss"]) and metrics["val_perplexity"] == pytest.approx(np.exp(metrics["val_loss"]))
    summary = json.loads((run / "data.json").read_text())
    assert summary["tokens"] == {"train": 5400, "val": 600} and summary["dtype"] == "uint16"
    assert load_vocab(run / "tokenizer").encode("the") == CharVocab.from_text(TEXT).encode("the")
    assert main(["evaluate", str(run)]) == 0  # the run folder alone rebuilds the data


def test_a_large_file_is_sampled_evenly_and_reproducibly(tmp_path):
    vocab = CharVocab("ab")
    with TokenWriter(tmp_path / "train.bin", "uint16") as w:
        w.write(np.arange(100_000) % 2)
    write_meta(tmp_path, vocab, "uint16", {"train": 100_000})
    data = token_file(str(tmp_path), block_size=8, max_windows=1000, seed=3)
    offsets = [data.train.offset(k) for k in range(1000)]
    assert len(data.train) == 1000 and data.val is None
    assert all(k * 99_992 // 1000 <= o < (k + 1) * 99_992 // 1000 for k, o in enumerate(offsets))  # one per stretch
    assert offsets == [token_file(str(tmp_path), block_size=8, max_windows=1000, seed=3).train.offset(k)
                       for k in range(1000)]
    assert offsets != [token_file(str(tmp_path), block_size=8, max_windows=1000, seed=4).train.offset(k)
                       for k in range(1000)]
    item = data.train[500]
    assert item["input_ids"].tolist() == [(offsets[500] + j) % 2 for j in range(8)]


def rss_kib() -> int:
    """This process's resident memory now (VmRSS), in KiB."""
    return int(next(line for line in Path("/proc/self/status").read_text().splitlines()
                    if line.startswith("VmRSS")).split()[1])


def growth_kib(folder: Path, n_tokens: int) -> int:
    """Resident memory added by building `token_file` on a generated uint16 corpus of n_tokens and drawing
    20 training batches as the trainer does (its shuffling sampler), plus two validation batches."""
    from torch.utils.data import DataLoader

    from xformer.train.trainer import ResumableSampler

    folder.mkdir()
    rng = np.random.default_rng(0)
    with TokenWriter(folder / "train.bin", "uint16") as w:
        for _ in range(n_tokens // 1_000_000):
            w.write(rng.integers(0, 50, 1_000_000))
    with TokenWriter(folder / "val.bin", "uint16") as w:
        w.write(rng.integers(0, 50, 10_000))
    write_meta(folder, CharVocab([chr(65 + i) for i in range(50)]), "uint16", {"train": n_tokens, "val": 10_000})
    before = rss_kib()
    data = token_file(str(folder), block_size=32, max_windows=100_000)
    loader = DataLoader(data.train, 8, sampler=ResumableSampler(data.train, num_replicas=1, rank=0, seed=0))
    batches = [b for _, b in zip(range(20), loader)] + [b for _, b in zip(range(2), DataLoader(data.val, 8))]
    assert batches[0]["input_ids"].shape == (8, 32)
    return rss_kib() - before


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads VmRSS from /proc")
def test_memory_does_not_grow_with_the_corpus(tmp_path):
    """A 40 MB token file against a 2 MB one: holding the file (as text_lm holds its stream, 8 bytes a token)
    would add 80 MB, loading it as uint16 38 MB; memory-mapped windows add almost nothing. (The peak RSS of
    whole training runs, 10 MB to 1 GB, is measured by benchmarks/memmap_rss.py.)"""
    small = growth_kib(tmp_path / "small", 1_000_000)
    large = growth_kib(tmp_path / "large", 20_000_000)
    assert large < small + 10 * 1024 and large < 20 * 1024, (small, large)


# ---------------------------------------------------------------- one-line errors


def fails(tmp_path, capsys, args: dict) -> str:
    capsys.readouterr()
    assert train(tmp_path, {"name": "token_file", "args": args}) == 2
    err = capsys.readouterr().err
    assert err.startswith("xformer: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


def test_token_folder_mistakes_end_in_one_line(tmp_path, capsys):
    folder = tmp_path / "sc"
    assert "is not a folder; prepare one first" in fails(tmp_path, capsys, {"path": str(folder)})
    folder.mkdir()
    assert f"{folder / 'meta.json'} is missing" in fails(tmp_path, capsys, {"path": str(folder)})
    write_text_corpus(folder, TEXT, "char")
    meta = json.loads((folder / "meta.json").read_text())
    assert "fewer than one window of block_size + 1 = 6001" in fails(tmp_path, capsys, {"path": str(folder),
                                                                                        "block_size": 6000})
    (folder / "meta.json").write_text(json.dumps({**meta, "dtype": "int8"}))
    assert "gives dtype 'int8'; token files are uint16 or uint32" in fails(tmp_path, capsys, {"path": str(folder)})
    (folder / "meta.json").write_text(json.dumps({**meta, "dtype": "uint32"}))  # the files hold uint16
    line = fails(tmp_path, capsys, {"path": str(folder)})
    assert f"{folder / 'train.bin'} holds 10800 bytes, not the 5400 uint32 tokens (21600 bytes)" in line
    (folder / "meta.json").write_text("{not json")
    assert "is not a token folder's meta.json (JSONDecodeError" in fails(tmp_path, capsys, {"path": str(folder)})
    (folder / "meta.json").write_text(json.dumps(meta))
    (folder / "val.bin").unlink()
    assert f"{folder / 'val.bin'} is missing" in fails(tmp_path, capsys, {"path": str(folder)})


def test_prepare_scripts_refuse_in_one_line_with_status_2(tmp_path, monkeypatch, capsys):
    """Each script run as a program (its ``__main__`` block, in this process: a subprocess would only add
    the imports' time)."""
    for name, argv, problem in [
        ("ett", [str(tmp_path / "none.csv")], f"series file {tmp_path / 'none.csv'} does not exist"),
        ("shakespeare_char", [str(tmp_path / "none.txt")], f"text file {tmp_path / 'none.txt'} does not exist"),
        ("wordpiece_corpus", ["--tokenizer", str(tmp_path / "none")], f"--tokenizer {tmp_path / 'none'} is not a"),
        ("image_folder", [str(tmp_path / "none")], f"{tmp_path / 'none'} is not a folder"),
    ]:
        monkeypatch.setattr(sys, "argv", ["prepare.py", *argv, "--out", str(tmp_path / "out")])
        with pytest.raises(SystemExit) as stop:
            runpy.run_path(str(ROOT / "data" / name / "prepare.py"), run_name="__main__")
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.count("\n") == 1 and err.startswith(f"prepare.py: error: {problem}"), err
    with pytest.raises(UserError, match="holds no class sub-folders"):
        script("image_folder").main([str(tmp_path), "--out", str(tmp_path / "x")])


# ---------------------------------------------------------------- series and images


def test_ett_copies_a_checked_csv_that_the_ett_dataset_reads(tmp_path):
    from xformer.data.series import ett

    dates = pd.date_range("2016-07-01", periods=14_400, freq="h").astype(str)
    frame = pd.DataFrame({"date": dates, **{c: np.sin(np.arange(14_400) / (i + 3)) for i, c in enumerate(
        ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"])}})
    frame.to_csv(tmp_path / "ETTh1.csv", index=False)
    meta = script("ett").main([str(tmp_path / "ETTh1.csv"), "--out", str(tmp_path / "ett")])
    assert meta["rows"] == 14_400 and meta["rows_per_day"] == 24 and meta["ett_columns"] and meta["ett_split_fits"]
    assert (tmp_path / "ett" / "ETTh1.csv").read_bytes() == (tmp_path / "ETTh1.csv").read_bytes()
    data = ett(path=str(tmp_path / "ett" / "ETTh1.csv"), input_len=24, horizon=12)
    assert len(data.train) == 8640 - 24 - 12 + 1
    frame.iloc[:100].to_csv(tmp_path / "short.csv", index=False)
    assert not script("ett").main([str(tmp_path / "short.csv"), "--out", str(tmp_path / "s")])["ett_split_fits"]
    frame.iloc[::-1].to_csv(tmp_path / "reversed.csv", index=False)
    with pytest.raises(ValueError, match="not in increasing order"):
        script("ett").main([str(tmp_path / "reversed.csv"), "--out", str(tmp_path / "r")])


def images(root: Path, per_class: int = 5) -> Path:
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
        (root / c / "notes.txt").write_text("not an image: skipped")
    return root


def test_image_folder_layout_classes_json_and_lazy_reading_with_workers(tmp_path, capsys):
    prepare = script("image_folder")
    src = images(tmp_path / "raw")
    classes = prepare.main([str(src), "--out", str(tmp_path / "set"), "--val-fraction", "0.2", "--test-fraction",
                            "0.2"])
    assert classes == json.loads((tmp_path / "set" / "classes.json").read_text())
    assert classes["class_names"] == ["cat", "dog"]
    assert classes["counts"] == {s: {"cat": n, "dog": n} for s, n in (("train", 3), ("val", 1), ("test", 1))}
    assert prepare.main([str(tmp_path / "set")]) == classes  # a laid-out folder is checked in place
    with pytest.raises(UserError, match="already exists"):
        prepare.main([str(src), "--out", str(tmp_path / "set")])
    bad = next((tmp_path / "set" / "val" / "dog").glob("*.png"))
    good = bad.read_bytes()
    bad.write_bytes(b"no image")
    with pytest.raises(UserError, match=f"cannot read image {bad}"):
        prepare.main([str(tmp_path / "set")])
    bad.write_bytes(good)

    from xformer.data.images import image_folder

    data = image_folder(str(tmp_path / "set"), image_size=8)
    first = data.train[0]["images"]
    path = data.train.source.samples[0][0]
    Image.new("RGB", (8, 8), (255, 255, 255)).save(path)  # read in __getitem__: the new pixels show
    assert not torch.equal(data.train[0]["images"], first)
    assert train(tmp_path, {"name": "image_folder", "args": {"root": str(tmp_path / "set"), "image_size": 8}},
                 "train.num_workers=2", "train.batch_size=2", run="images") == 0


def test_images_in_sub_folders_of_a_class_are_laid_out_as_imagefolder_reads_them(tmp_path):
    """torchvision's ImageFolder reads a class folder's sub-folders too: so does the layout, keeping their paths
    (two files of one name in different sub-folders both arrive)."""
    src = images(tmp_path / "raw")
    for sub in ("a", "b"):
        (src / "cat" / sub).mkdir()
        Image.new("RGB", (6, 6), (10, 20, 30)).save(src / "cat" / sub / "same_name.png")
    classes = script("image_folder").main([str(src), "--out", str(tmp_path / "set"), "--val-fraction", "0",
                                           "--test-fraction", "0"])
    assert classes["counts"]["train"]["cat"] == classes["counts"]["train"]["dog"] + 2
    laid_out = sorted(p.relative_to(tmp_path / "set" / "train" / "cat") for p in
                      (tmp_path / "set" / "train" / "cat").rglob("same_name.png"))
    assert laid_out == [Path("a/same_name.png"), Path("b/same_name.png")]


def test_url_downloads_only_when_given_a_file_url_stands_in_for_the_network(tmp_path):
    """--url goes through urllib; a file:// URL exercises the download, extraction and preparation offline."""
    import tarfile

    source = write(tmp_path / "remote.txt", TEXT)
    meta = script("shakespeare_char").main(["--url", source.as_uri(), "--out", str(tmp_path / "sc")])
    assert (tmp_path / "sc" / "input.txt").read_text(encoding="utf-8") == TEXT and meta["tokens"]["train"] == 5400
    src = images(tmp_path / "pets" / "photos")
    with tarfile.open(tmp_path / "pets.tar.gz", "w:gz") as archive:
        archive.add(src.parent, arcname="pets")
    classes = script("image_folder").main(["--url", (tmp_path / "pets.tar.gz").as_uri(), "--out",
                                           str(tmp_path / "set")])
    assert classes["counts"] == {"train": {"cat": 4, "dog": 4}, "val": {"cat": 1, "dog": 1}}
    with pytest.raises(UserError, match="cannot download"):
        script("ett").main(["--url", (tmp_path / "missing.csv").as_uri(), "--out", str(tmp_path / "ett")])
