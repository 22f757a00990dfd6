"""A Hugging Face folder whose language-model head is not what config.json's ``tie_word_embeddings`` says: xformer
gives what transformers gives. A GPT-2 or BERT head that is tied reads the word embedding (a ``GPT2Model`` folder's
default: transformers ties it too, the logits are equal); one that is not tied and absent from the weights (a
``GPT2Model`` or edited ``BertForMaskedLM`` folder saved with ``tie_word_embeddings=False``) is left untrained
(``model.untrained``), as transformers initialises it fresh, so generate and evaluate refuse it while ``init_from``
fine-tunes it; a tied config whose weights hold another head is untied, as transformers does. The Trainer's step
clears ``model.untrained`` of what it trains. Every folder is built here, tiny, random init; nothing is downloaded."""
from __future__ import annotations

import contextlib

import pytest
import torch
import yaml

from xformer.cli import main
from xformer.errors import ConfigError

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

CORPUS = "the quick brown fox jumps over the lazy dog. " * 20
TINY_TRAIN = {"steps": 2, "batch_size": 2, "eval_every": 2, "log_every": 1}
# folder -> (class saved, tie_word_embeddings, what is then done to its weights file)
GPT2 = {"model_tied": ("GPT2Model", True, None), "model_untied": ("GPT2Model", False, None),
        "lm_tied": ("GPT2LMHeadModel", True, None), "lm_untied": ("GPT2LMHeadModel", False, None),
        "lm_untied_no_head": ("GPT2LMHeadModel", False, "drop"),
        "lm_tied_other_head": ("GPT2LMHeadModel", True, "other")}
BERT = {"mlm_tied": (True, None), "mlm_untied": (False, None), "mlm_untied_no_decoder": (False, "drop"),
        "mlm_tied_other_decoder": (True, "other")}
GPT2_HEAD, BERT_DECODER = "lm_head.weight", "cls.predictions.decoder.weight"


def _edit_weights(folder, name: str, edit: str | None, embedding: str) -> None:
    """Remove tensor ``name`` from the folder's model.safetensors ("drop"), or write a random one ("other")."""
    from safetensors.torch import load_file, save_file

    if edit is None:
        return
    state = load_file(folder / "model.safetensors")
    if edit == "drop":
        state.pop(name)
    else:
        state[name] = torch.randn_like(state[embedding])
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """GPT's folders (GPT2's keys), each with a byte-level BPE tokenizer, BERT's (BERT's keys), and corpus.txt."""
    from tokenizers import ByteLevelBPETokenizer

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("hf_head_gaps")
    (root / "corpus.txt").write_text(CORPUS)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([CORPUS], vocab_size=270, min_frequency=1, special_tokens=["<|endoftext|>"],
                            show_progress=False)
    tok = transformers.GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>",
                                         bos_token="<|endoftext|>", unk_token="<|endoftext|>")
    for name, (cls, tie, edit) in GPT2.items():
        config = transformers.GPT2Config(vocab_size=len(tok), n_positions=32, n_embd=16, n_layer=1, n_head=2,
                                         bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
                                         tie_word_embeddings=tie)
        getattr(transformers, cls)(config).save_pretrained(root / name)
        tok.save_pretrained(root / name)
        _edit_weights(root / name, GPT2_HEAD, edit, "transformer.wte.weight")
    for name, (tie, edit) in BERT.items():
        transformers.BertForMaskedLM(transformers.BertConfig(
            vocab_size=13, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=32, tie_word_embeddings=tie)).save_pretrained(root / name)
        _edit_weights(root / name, BERT_DECODER, edit, "bert.embeddings.word_embeddings.weight")
    return root


def _ours(folder, recwarn):
    """(model, our warnings about untrained layers) of load_pretrained."""
    from xformer.interop.pretrained import load_pretrained

    model = load_pretrained(f"hf:{folder}")[0]
    return model, [str(w.message) for w in recwarn.list if "not read from the checkpoint" in str(w.message)]


@pytest.mark.parametrize("name", sorted(GPT2))
def test_a_gpt2_folder_gives_transformers_head_or_an_untrained_one(folders, name, recwarn):
    """GPT2LMHeadModel.from_pretrained decides: a head it reports missing (it initialises one) is untrained here,
    named with a warning; otherwise the logits are transformers'. Before, an untied GPT2Model folder (and one
    whose lm_head was removed) read the word embedding as its head, and a tied config whose weights hold another
    lm_head overwrote the embedding with it."""
    hf, info = transformers.GPT2LMHeadModel.from_pretrained(folders / name, output_loading_info=True)
    missing = GPT2_HEAD in info["missing_keys"]
    assert missing == (name in ("model_untied", "lm_untied_no_head"))  # what transformers does, as the docs say
    model, warned = _ours(folders / name, recwarn)
    if missing:
        assert model.untrained == {"head.proj.weight"}, model.untrained
        assert len(warned) == 1 and "head.proj" in warned[0] and "--init-from" in warned[0], warned
        return
    assert model.untrained == frozenset() and warned == []
    ids = torch.tensor([[5, 9, 2, 7, 11, 3]])
    with torch.no_grad():
        torch.testing.assert_close(model({"input_ids": ids})["logits"], hf.eval()(input_ids=ids).logits,
                                   atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", sorted(BERT))
def test_a_bert_folder_gives_transformers_decoder_or_an_untrained_one(folders, name, recwarn):
    """The same for BertForMaskedLM's decoder (load_pretrained and load_bert): an untied folder without
    cls.predictions.decoder.weight read the word embedding as its decoder."""
    from xformer.interop.hf_bert import load_bert

    hf, info = transformers.BertForMaskedLM.from_pretrained(folders / name, output_loading_info=True)
    missing = BERT_DECODER in info["missing_keys"]
    assert missing == (name == "mlm_untied_no_decoder")
    model, warned = _ours(folders / name, recwarn)
    with pytest.warns(UserWarning) if missing else contextlib.nullcontext():
        by_load_bert = load_bert(folders / name)
    assert model.untrained == by_load_bert.untrained == ({"head.decoder.weight"} if missing else frozenset())
    assert len(warned) == missing
    if not missing:
        ids = torch.tensor([[2, 5, 7, 9, 3]])
        with torch.no_grad():
            expect = hf.eval()(input_ids=ids).logits
            for ours in (model, by_load_bert):
                got = ours({"input_ids": ids, "attention_mask": torch.ones_like(ids)})["logits"]
                torch.testing.assert_close(got, expect, atol=1e-5, rtol=0)


def test_load_gpt2_names_an_untrained_head(folders):
    """The Python reader of GPT-2 objects and folders: an untied GPT2Model's head is left fresh, with a warning."""
    from xformer.interop.hf_gpt2 import load_gpt2

    with pytest.warns(UserWarning, match="head.proj"):
        model = load_gpt2(folders / "model_untied")
    assert model.untrained == {"head.proj.weight"}
    hf = transformers.GPT2Model.from_pretrained(folders / "model_untied")
    with pytest.warns(UserWarning, match="head.proj"):
        assert load_gpt2(hf).untrained == {"head.proj.weight"}
    assert load_gpt2(transformers.GPT2Model.from_pretrained(folders / "model_tied")).untrained == frozenset()


def test_generate_and_evaluate_refuse_an_untied_gpt2_model_folder(folders, cli_error):
    """generate wrote text from the word embedding used as a head transformers would have made random."""
    folder = folders / "model_untied"
    cli_error(["generate", folder, "--prompt", "the", "--max-new-tokens", "2"], "head.proj", "random weights",
              f"--init-from hf:{folder}")
    cli_error(["evaluate", folder], "head.proj", "random weights", f"--init-from hf:{folder}")
    assert main(["generate", str(folders / "model_tied"), "--prompt", "the", "--max-new-tokens", "2"]) == 0


def _lm_recipe(root, folder: str) -> str:
    path = root / f"lm_{folder}.yaml"
    path.write_text(yaml.safe_dump({
        "init_from": f"hf:{root / folder}",
        "data": {"name": "text_lm", "args": {"files": [str(root / "corpus.txt")], "block_size": 8,
                                             "val_fraction": 0.2}},
        "train": TINY_TRAIN}))
    return str(path)


def test_init_from_fine_tunes_the_fresh_head(folders, tmp_path, capsys, cli_error):
    from xformer.train.run import load_run_model

    recipe = _lm_recipe(folders, "model_untied")
    cli_error(["evaluate", recipe], "head.proj", "a score before training")
    capsys.readouterr()
    assert main(["train", recipe, "--out", str(tmp_path / "run"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "left fresh: head.proj;" in out, out
    assert load_run_model(tmp_path / "run")[1].untrained == frozenset()


def test_training_clears_untrained(folders, tmp_path):
    """The model init_from filled is refused until trained; the Trainer's first step trains the fresh head, so the
    model it holds is no longer refused (it was, wrongly, for a Python user holding it after training)."""
    from xformer.interop.pretrained import load_source
    from xformer.models import check_trained
    from xformer.train.config import load_experiment
    from xformer.train.distributed import World
    from xformer.train.init_from import init_from_pretrained, start_from_source
    from xformer.train.run import build_resolved
    from xformer.train.trainer import Trainer

    config = load_experiment(_lm_recipe(folders, "model_untied"))
    source = load_source(config.init_from)
    config, model, data = build_resolved(start_from_source(config, source, tmp_path), torch.device("cpu"))
    init_from_pretrained(model, config, data, source)
    with pytest.raises(ConfigError, match="head.proj"):
        check_trained(model, "a score")
    Trainer(model, data, config.train, None, World()).fit()
    assert model.untrained == frozenset()
    check_trained(model, "a score")


def test_a_step_clears_only_what_it_trains():
    """A frozen parameter, or one no loss reaches (no gradient), is as random after the step as before."""
    from xformer.models import clear_stepped_untrained

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    model.untrained = frozenset({"0.weight", "0.bias", "1.weight"})
    model[0].bias.requires_grad_(False)
    model[0](torch.ones(1, 2)).sum().backward()
    clear_stepped_untrained(model)
    assert model.untrained == {"0.bias", "1.weight"}


def test_attention_on_a_hugging_face_folder_says_to_fine_tune_it(tmp_path, cli_error):
    """It said the folder was "not a run folder (no config.yaml)", without the way to make a run of it."""
    transformers.ViTModel(transformers.ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                                 intermediate_size=32, image_size=8, patch_size=4)
                          ).save_pretrained(tmp_path / "vit")
    cli_error(["attention", tmp_path / "vit"], "Hugging Face folder", f"--init-from hf:{tmp_path / 'vit'}")
