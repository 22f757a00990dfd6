"""Hugging Face folders as save_pretrained writes them above max_shard_size: the shards the index names are one
checkpoint (safetensors, and the older pickled .bin shards read with weights_only); a folder missing a shard, a
broken index or a file given for the folder is one line."""
import json
import shutil

import pytest
import torch

from xformer.errors import ConfigError
from xformer.interop.hf_bert import load_bert
from xformer.interop.hf_gpt2 import load_gpt2
from xformer.interop.pretrained import load_pretrained

transformers = pytest.importorskip("transformers")
SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
             max_position_embeddings=64)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("shards")
    model = transformers.BertForSequenceClassification(transformers.BertConfig(
        vocab_size=50, num_labels=3, id2label={0: "neg", 1: "neu", 2: "pos"}, label2id={"neg": 0, "neu": 1, "pos": 2},
        **SIZES)).eval()
    model.save_pretrained(root / "sharded", max_shard_size="20KB")
    return root, model


def test_the_shards_of_a_bert_classifier_give_transformers_logits(classifier):
    root, reference = classifier
    index = json.loads((root / "sharded" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 2  # really split
    ids = torch.randint(0, 50, (2, 9))
    with torch.no_grad():
        expect = reference(input_ids=ids).logits
        for model in (load_pretrained(f"hf:{root / 'sharded'}")[0], load_bert(root / "sharded")):
            got = model.eval()({"input_ids": ids, "attention_mask": torch.ones_like(ids)})["logits"]
            torch.testing.assert_close(got, expect, atol=1e-5, rtol=1e-4)


def test_pickled_shards_of_gpt2_are_read_without_running_code(tmp_path):
    torch.manual_seed(0)
    reference = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=50, n_positions=32, n_embd=32, n_layer=2, n_head=4)).eval()
    folder = tmp_path / "gpt2"
    reference.config.save_pretrained(folder)
    state = reference.state_dict()
    names = sorted(state)
    halves = {"pytorch_model-00001-of-00002.bin": names[: len(names) // 2],
              "pytorch_model-00002-of-00002.bin": names[len(names) // 2:]}
    for file, keys in halves.items():
        torch.save({k: state[k] for k in keys}, folder / file)
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {k: file for file, keys in halves.items() for k in keys}}))
    ids = torch.randint(0, 50, (2, 7))
    with torch.no_grad():
        got = load_gpt2(folder).eval()({"input_ids": ids})["logits"]
        torch.testing.assert_close(got, reference(input_ids=ids).logits, atol=1e-5, rtol=1e-4)


def test_a_missing_shard_a_broken_index_and_a_file_for_the_folder_are_one_line(classifier, tmp_path):
    root, _ = classifier
    broken = tmp_path / "broken"
    shutil.copytree(root / "sharded", broken)
    shard = sorted(broken.glob("model-*.safetensors"))[1]
    shard.unlink()
    with pytest.raises(ConfigError, match=f"names the shard {shard.name}, which is not in") as raised:
        load_pretrained(f"hf:{broken}")
    assert "\n" not in str(raised.value)
    (broken / "model.safetensors.index.json").write_text('{"weights": {}}')
    with pytest.raises(ConfigError, match="is no shard index"):
        load_pretrained(f"hf:{broken}")
    with pytest.raises(ConfigError, match=r"config.json is a file; give the Hugging Face model folder that holds it"):
        load_pretrained(f"hf:{root / 'sharded' / 'config.json'}")
