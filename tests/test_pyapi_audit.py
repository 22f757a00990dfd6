"""The library as a notebook user calls it: a model fed a wrong batch, the Trainer on one's own torch Dataset, and
predict_run on images held in memory. Each mistake is refused in one line by the project's errors, not a KeyError,
AttributeError or TypeError raised deep inside."""
import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.config import ConfigError, from_dict
from xformer.data.registry import DataBundle
from xformer.train.config import ExperimentConfig, TrainConfig
from xformer.train.distributed import World
from xformer.train.trainer import Trainer


def vit(n_classes: int = 3):
    return build_model(ModelConfig(
        architecture="encoder", core=CoreConfig(d_model=16, n_layers=1, n_heads=2),
        tokenizer=PartConfig("image_patches", {"image_size": 8, "patch_size": 2, "channels": 1}),
        head=PartConfig("classification", {"n_classes": n_classes})))


class Images(Dataset):
    """n random 8x8 grey images and labels, as items keyed ``images`` and ``label_key``."""

    def __init__(self, n: int, label_key: str = "labels"):
        g = torch.Generator().manual_seed(n)
        self.x, self.y, self.label_key = torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g), \
            label_key

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"images": self.x[i], self.label_key: self.y[i]}


def trainer(train, val=None, **args) -> Trainer:
    config = TrainConfig(**{"steps": 2, "batch_size": 8, "eval_every": 2, "device": "cpu", **args})
    return Trainer(vit(), DataBundle(train=train, val=val), config, None, World())


def one_line(error) -> str:
    assert "\n" not in str(error.value)
    return str(error.value)


@pytest.mark.parametrize("batch, words", [
    ({"image": torch.rand(2, 1, 8, 8)}, r"the batch has no 'images' \(its keys: 'image'\)"),
    (torch.rand(2, 1, 8, 8), r"a model takes a batch dict such as \{'images': tensor\}, got Tensor"),
])
def test_a_model_fed_a_wrong_batch_names_the_key_it_reads(batch, words):
    """Was a bare KeyError 'images' / an IndexError (with torch's indexing deprecation warning)."""
    with pytest.raises(ConfigError, match=words) as e:
        vit()(batch)
    one_line(e)


def test_the_trainer_refuses_a_dataset_of_tuples_in_one_line():
    """A TensorDataset's (image, label) tuples: was AttributeError 'list' object has no attribute 'items' in the
    training loop."""
    data = TensorDataset(torch.rand(16, 1, 8, 8), torch.randint(0, 3, (16,)))
    with pytest.raises(ConfigError, match=r"the training data gives batches of list, not dicts; .*'images'") as e:
        trainer(data).fit()
    one_line(e)


@pytest.mark.parametrize("split", ["train", "val"])
def test_a_batch_without_targets_is_refused_where_a_loss_is_needed(split):
    """Items keyed 'label' (for 'labels'): was KeyError 'loss_weight' in the loop or in evaluation."""
    train, val = (Images(16, "label"), Images(8)) if split == "train" else (Images(16), Images(8, "label"))
    with pytest.raises(ConfigError, match=r"the model returned no loss on a batch of 'images', 'label'; give its "
                                          r"targets \('labels'") as e:
        trainer(train, val).fit()
    one_line(e)


def test_trainer_evaluate_names_the_splits_it_has():
    """Was TypeError (len of None) for a split the data lacks and AttributeError for a misspelt one."""
    t = trainer(Images(16))
    with pytest.raises(ConfigError, match=r"^the data has no 'val' split; give DataBundle\(val=\.\.\.\) or evaluate "
                                          r"one of: train$"):
        t.evaluate("val")
    with pytest.raises(ConfigError, match=r"^no split 'valid'; evaluate one of: train$"):
        t.evaluate("valid")
    assert set(t.evaluate("train")) == {"loss"}


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    from xformer.train.run import train_run

    run = tmp_path_factory.mktemp("pyapi") / "run"
    config = from_dict(ExperimentConfig, {
        "model": {"architecture": "encoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2},
                  "tokenizer": {"name": "image_patches", "args": {"patch_size": 2}},
                  "head": {"name": "classification"}},
        "data": {"name": "digits"}, "train": {"steps": 4, "batch_size": 32, "eval_every": 4, "device": "cpu"}})
    train_run(config, run)
    return run


def test_predict_run_takes_images_in_memory_as_their_files(digits_run, tmp_path):
    """numpy arrays and PIL images (a notebook's): was TypeError 'expected str, bytes or os.PathLike object'."""
    from PIL import Image

    from xformer.predict import predict_run

    grey = (np.random.default_rng(0).random((16, 16)) * 255).astype(np.uint8)
    rgb = (np.random.default_rng(1).random((8, 8, 3)) * 255).astype(np.uint8)
    for i, array in enumerate((grey, rgb)):
        Image.fromarray(array).save(tmp_path / f"{i}.png")
    from_files, _ = predict_run(digits_run, [tmp_path / "0.png", tmp_path / "1.png"], top_k=3)
    in_memory, table = predict_run(digits_run, [grey, Image.fromarray(rgb)], top_k=3)
    assert [row["file"] for row in in_memory] == ["image 0", "image 1"]
    assert [row["top_k"] for row in in_memory] == [row["top_k"] for row in from_files]
    assert table.splitlines()[1].startswith("image 0,")
    with pytest.raises(ConfigError, match=r"^image 0: an array of float64 \(8, 8, 3\); give uint8 pixels .*") as e:
        predict_run(digits_run, [np.zeros((8, 8, 3))])
    one_line(e)
