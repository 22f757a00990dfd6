"""A character-level GPT exported to Hugging Face (``xformer export --format hf``): its tokenizer.json gives
the run's ids through ``AutoTokenizer``, and Hugging Face's greedy ``generate`` writes what xformer's does
(a vocabulary without [EOS] has no eos_token_id, so neither stops early); and a nanoGPT user's habits on the
same run: a prompt read from a file, any kept checkpoint sampled."""
import pytest
import torch
import yaml

from xformer.cli import main
from xformer.data.vocab import load_vocab
from xformer.generation.text import generate_text
from xformer.train.run import load_run_model

transformers = pytest.importorskip("transformers")

TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\n") * 20


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("char_hf")
    (tmp / "text.txt").write_text(TEXT, encoding="utf-8")
    recipe = {"model": {"architecture": "decoder",
                        "core": {"d_model": 16, "n_layers": 2, "n_heads": 2, "d_ff": 32, "bias": False,
                                 "qkv_bias": False},
                        "tokenizer": {"name": "text"}, "head": {"name": "causal_lm"}},
              "data": {"name": "text_lm", "args": {"files": str(tmp / "text.txt"), "tokenizer": "char",
                                                    "block_size": 32}},
              "train": {"steps": 30, "batch_size": 8, "lr": 1e-2, "eval_every": 30}}
    (tmp / "char.yaml").write_text(yaml.safe_dump(recipe))
    torch.set_num_threads(1)
    assert main(["train", str(tmp / "char.yaml"), "--out", str(tmp / "run"), "--quiet", "--threads", "1"]) == 0
    assert main(["export", str(tmp / "run"), "--format", "hf", "--out", str(tmp / "hf")]) == 0
    return tmp / "run", tmp / "hf"


def test_autotokenizer_gives_the_runs_character_ids(exported):
    run, hf = exported
    vocab = load_vocab(run / "tokenizer")
    tokenizer = transformers.AutoTokenizer.from_pretrained(hf)
    for text in ("First Citizen:\n", "Speak, speak.\n\nAll:", " hear  me "):
        ids = tokenizer(text)["input_ids"]
        assert ids == vocab.encode(text), text
        assert tokenizer.decode(ids) == text
    assert tokenizer.model_max_length == 32


def test_hf_greedy_generation_writes_what_xformer_writes(exported):
    run, hf = exported
    config = transformers.AutoConfig.from_pretrained(hf)
    assert config.eos_token_id is None and config.bos_token_id is None  # no [EOS] / [BOS] in the vocabulary
    model = transformers.AutoModelForCausalLM.from_pretrained(hf).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(hf)
    prompt = "First Citizen:\n"
    encoded = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**encoded, max_new_tokens=16, do_sample=False, pad_token_id=0)
    theirs = tokenizer.decode(out[0][encoded["input_ids"].shape[1]:])
    _, ours_model = load_run_model(run)
    ours = generate_text(ours_model, load_vocab(run / "tokenizer"), prompt, 16)
    assert len(theirs) == 16 and theirs == ours


def test_a_run_fine_tuned_from_the_export_reads_characters_again(exported, tmp_path, capsys):
    run, hf = exported
    (tmp_path / "more.txt").write_text(TEXT[::-1], encoding="utf-8")  # the same characters
    recipe = {"model": {"architecture": "decoder", "head": {"name": "causal_lm"}},
              "data": {"name": "text_lm", "args": {"files": str(tmp_path / "more.txt"), "block_size": 32}},
              "train": {"steps": 2, "batch_size": 8, "eval_every": 2}}
    (tmp_path / "ft.yaml").write_text(yaml.safe_dump(recipe))
    capsys.readouterr()
    assert main(["train", str(tmp_path / "ft.yaml"), "--out", str(tmp_path / "ft"), "--threads", "1",
                 "--init-from", f"hf:{hf}"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "loaded 28 of 28 tensors; left fresh: none;" in out, out
    vocab = load_vocab(tmp_path / "ft" / "tokenizer")
    assert vocab.kind == "char" and vocab.stoi == load_vocab(run / "tokenizer").stoi


def test_generate_reads_a_prompt_file_and_any_kept_checkpoint(exported, tmp_path, capsys):
    run, hf = exported
    prompt = "First Citizen:\nBefore we\n"  # several lines, a trailing newline: what --prompt quoting loses
    (tmp_path / "prompt.txt").write_text(prompt, encoding="utf-8")
    _, model = load_run_model(run, "step_30")
    expected = prompt + generate_text(model, load_vocab(run / "tokenizer"), prompt, 12)
    capsys.readouterr()
    assert main(["generate", str(run), "--prompt-file", str(tmp_path / "prompt.txt"), "--checkpoint", "step_30",
                 "--greedy", "--max-new-tokens", "12"]) == 0
    assert capsys.readouterr().out == expected + "\n"
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    for argv, named in ((["--prompt-file", str(tmp_path / "nope.txt")], "--prompt-file"),
                        (["--prompt-file", str(tmp_path / "latin1.txt")], "is not UTF-8 text"),
                        (["--prompt", "x", "--checkpoint", "step_7"], "no such checkpoint"),
                        ([str(hf), "--prompt", "x", "--checkpoint", "last"], "holds one set of weights")):
        target = [] if argv[0] == str(hf) else [str(run)]
        assert main(["generate", *target, *argv]) == 2
        err = capsys.readouterr().err
        assert named in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_tokenizer_encode_shows_a_runs_ids_and_pieces(exported, tmp_path, capsys, monkeypatch):
    import io
    import json

    run, _ = exported
    vocab = load_vocab(run / "tokenizer")
    capsys.readouterr()
    assert main(["tokenizer", "encode", str(run), "First Citizen:", "hear me"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["ids"] for line in lines] == [vocab.encode("First Citizen:"), vocab.encode("hear me")]
    assert lines[0]["pieces"] == list("First Citizen:") and lines[1]["decoded"] == "hear me"
    monkeypatch.setattr("sys.stdin", io.StringIO("All:\nSpeak\n"))
    assert main(["tokenizer", "encode", str(run / "tokenizer"), "-"]) == 0
    assert [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()] == ["All:", "Speak"]
    for argv, named in (([str(tmp_path), "x"], "holds no saved tokenizer"), ([str(run), "é"], "not in the")):
        assert main(["tokenizer", "encode", *argv]) == 2
        err = capsys.readouterr().err
        assert named in err and err.count("\n") == 1 and "Traceback" not in err, err
    # decode: ids as encode prints them (a JSON list too) back to pieces and text
    ids = vocab.encode("hear me")
    assert main(["tokenizer", "decode", str(run), *map(str, ids)]) == 0
    assert json.loads(capsys.readouterr().out) == {"ids": ids, "pieces": list("hear me"), "text": "hear me"}
    assert main(["tokenizer", "decode", str(run), json.dumps(ids)]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "hear me"
    for bad in (str(vocab.vocab_size), "x"):
        assert main(["tokenizer", "decode", str(run), "1", bad]) == 2
        err = capsys.readouterr().err
        assert f"ids ['{bad}'] are not whole numbers from 0 to {vocab.vocab_size - 1}" in err and err.count("\n") == 1


def test_other_text_names_every_character_the_runs_vocabulary_lacks(exported, tmp_path, capsys):
    run, _ = exported
    (tmp_path / "other.txt").write_text("Zounds, " + TEXT[:300] + " café\n", encoding="utf-8")  # train and val parts
    capsys.readouterr()
    assert main(["evaluate", str(run), f"data.args.files={tmp_path / 'other.txt'}"]) == 2
    err = capsys.readouterr().err
    assert "2 character(s) ['Z', 'é'] are not in the" in err and "WordPiece vocabulary" in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_an_output_is_never_the_runs_own_data_file(exported, tmp_path, capsys):
    run, _ = exported
    data_file = yaml.safe_load((run / "config.yaml").read_text())["data"]["args"]["files"]
    before = open(data_file, "rb").read()
    (tmp_path / "new.txt").write_text("hear me\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["predict", str(run), str(tmp_path / "new.txt"), "--out", data_file, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert f"--out {data_file} is a data file of the run" in err and err.count("\n") == 1, err
    assert open(data_file, "rb").read() == before


def test_init_from_a_hugging_face_folder_without_hf_says_to_add_it(exported, tmp_path, capsys):
    _, hf = exported
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    recipe = {"model": {"architecture": "decoder", "head": {"name": "causal_lm"}},
              "data": {"name": "text_lm", "args": {"files": str(tmp_path / "t.txt"), "block_size": 32}},
              "train": {"steps": 1}}
    (tmp_path / "ft.yaml").write_text(yaml.safe_dump(recipe))
    capsys.readouterr()
    assert main(["train", str(tmp_path / "ft.yaml"), "--out", str(tmp_path / "ft"), "--init-from", str(hf)]) == 2
    err = capsys.readouterr().err
    assert f"a Hugging Face folder (config.json), not an xformer run; give it as hf:{hf}" in err, err
    assert not (tmp_path / "ft").exists()


def test_generate_continues_a_prompt_with_the_exported_folder(exported, capsys):
    """`xformer generate HF_FOLDER` on the export itself ended in a tokenizers traceback ("WordLevel error: Missing
    [UNK] token"): reading the folder's tokenizer checked whether it keeps whitespace by encoding a tab, which a
    character table without [UNK] refuses. A prompt character the table lacks is one line, as for the run."""
    run, hf = exported
    outs = []
    for folder in (run, hf):
        capsys.readouterr()
        argv = ["generate", str(folder), "--prompt", "First Citizen:\n", "--greedy", "--max-new-tokens", "12"]
        assert main(argv) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]
    assert main(["generate", str(hf), "--prompt", "Zounds\t"]) == 2
    err = capsys.readouterr().err
    assert "'Z'" in err and "'\\t'" in err and err.count("\n") == 1 and "Traceback" not in err, err
