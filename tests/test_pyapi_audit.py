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
    # float RGB in [0, 1] is read since (tests/test_vision_inputs.py); int64 colour has no PIL mode
    with pytest.raises(ConfigError, match=r"^image 0: an array of int64 \(8, 8, 3\); give uint8 pixels .*") as e:
        predict_run(digits_run, [np.zeros((8, 8, 3), np.int64)])
    one_line(e)


def test_predict_run_takes_one_image_in_memory_as_one_image(digits_run):
    """A lone array was iterated row by row (list(array)); it is one image, as a lone path is one file."""
    from xformer.predict import predict_run

    grey = (np.random.default_rng(2).random((8, 8)) * 255).astype(np.uint8)
    assert predict_run(digits_run, grey, top_k=2)[0] == predict_run(digits_run, [grey], top_k=2)[0]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    import pandas as pd

    from xformer.train.run import train_run

    tmp = tmp_path_factory.mktemp("pyapi_text")
    rng = np.random.default_rng(0)
    labels = rng.choice(["neg", "pos"], 64)
    words = {"neg": ["bad", "awful"], "pos": ["good", "great"]}
    pd.DataFrame({"review": [f"{rng.choice(words[y])} film" for y in labels], "sentiment": labels}).to_csv(
        tmp / "train.csv", index=False)
    config = from_dict(ExperimentConfig, {
        "model": {"architecture": "encoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2},
                  "tokenizer": {"name": "bert_text"}, "head": {"name": "classification"}},
        "data": {"name": "text_classification", "args": {"files": str(tmp / "train.csv"), "text_column": "review",
                                                         "label_column": "sentiment", "vocab_size": 60,
                                                         "min_frequency": 1, "max_length": 8}},
        "train": {"steps": 2, "batch_size": 16, "eval_every": 2, "device": "cpu"}})
    train_run(config, tmp / "run")
    return tmp


def test_predict_run_classifies_texts_of_a_pandas_frame_or_series(text_run):
    """Texts held in a notebook: was `text file ... does not exist` (a frame) or a list of its column names."""
    import pandas as pd

    from xformer.predict import predict_run

    texts = ["great film", "awful film", "good"]
    (text_run / "new.csv").write_text("review\n" + "\n".join(texts) + "\n")
    from_file, _ = predict_run(text_run / "run", text_run / "new.csv", top_k=2)
    frame = pd.DataFrame({"id": [7, 8, 9], "review": texts}, index=[10, 11, 12])
    for given in (frame, pd.Series(texts, index=[10, 11, 12])):
        rows, table = predict_run(text_run / "run", given, top_k=2)
        assert [row["file"] for row in rows] == ["row 10", "row 11", "row 12"]
        assert [(row["text"], row["top_k"]) for row in rows] == [(row["text"], row["top_k"]) for row in from_file]
    with pytest.raises(ConfigError, match=r"^the frame has no column 'review' \(its columns: id, text\); the run "
                                          r"reads its texts from that column$"):
        predict_run(text_run / "run", frame.rename(columns={"review": "text"}))


def test_an_input_of_another_kind_is_refused_in_one_line(digits_run, text_run):
    """A frame given to an image run, an array to a text run: were TypeError 'expected str, bytes or os.PathLike'."""
    import pandas as pd

    from xformer.predict import predict_run

    with pytest.raises(ConfigError, match=r"^a pandas.DataFrame is not an image; give image files or folders, PIL "
                                          r"images or numpy arrays$"):
        predict_run(digits_run, pd.DataFrame({"a": [1]}))
    with pytest.raises(ConfigError, match=r"^a numpy.ndarray is not a text; give text files, .csv / .tsv / .jsonl "
                                          r"files, pandas DataFrames or Series of texts$"):
        predict_run(text_run / "run", np.zeros((8, 8), np.uint8))


def test_predict_run_classifies_series_of_a_numpy_array_as_its_npz(tmp_path):
    """X (N, L) held in memory, the .npz's array: was TypeError 'expected str, bytes or os.PathLike object'."""
    from pathlib import Path

    from xformer.predict import predict_run
    from xformer.train.config import load_experiment
    from xformer.train.run import train_run

    recipe = Path(__file__).parent.parent / "tasks" / "patchtst_classify.yaml"
    train_run(load_experiment(recipe, ["train.steps=2", "train.eval_every=2", "model.core.n_layers=1"]),
              tmp_path / "run")
    x = np.random.default_rng(0).normal(size=(3, 60))
    np.savez(tmp_path / "new.npz", X=x)
    from_file, _ = predict_run(tmp_path / "run", tmp_path / "new.npz", top_k=2)
    in_memory, _ = predict_run(tmp_path / "run", [x, x[:1, :, None]], top_k=2)
    assert [row["file"] for row in in_memory] == ["series 0", "series 1", "series 2", "series 3"]
    assert [row["top_k"] for row in in_memory] == [row["top_k"] for row in from_file + from_file[:1]]
    with pytest.raises(ConfigError, match=r"^array 0: series of 70 steps x 1 channels; the run was trained on 60 "
                                          r"x 1: give series of 60 steps and 1 channels$") as e:
        predict_run(tmp_path / "run", np.ones((2, 70, 1)), top_k=2)
    one_line(e)


def test_predict_run_on_no_inputs_says_so(tmp_path):
    from xformer.predict import predict_run

    with pytest.raises(ConfigError, match="nothing to predict: inputs is empty"):
        predict_run(tmp_path / "run", [])  # refused before the run is read: it was "no text in " for a text run
