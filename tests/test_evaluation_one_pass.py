"""An evaluation reads each example once: the loss and the data's metrics come from one pass over the split
(an image folder decodes every image once, not once for the loss and again for the accuracy), with the same
figures as two passes give; predict builds its evaluation transform once, not once per file."""
import torch
from PIL import Image

import xformer.predict as predict
from xformer.config import from_dict
from xformer.data.series_report import forecast_errors
from xformer.train.config import ExperimentConfig
from xformer.train.distributed import World
from xformer.train.run import build
from xformer.train.trainer import Trainer

RECIPE = {"model": {"architecture": "encoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
                    "tokenizer": {"name": "series_patches", "args": {"patch_len": 8, "stride": 8}},
                    "head": {"name": "forecast"}},
          "data": {"name": "csv_series", "args": {"input_len": 32, "horizon": 8}},  # the generated frame
          "train": {"steps": 2, "batch_size": 16, "eval_every": 2, "device": "cpu"}}


class CountingReads(torch.utils.data.Dataset):
    def __init__(self, dataset):
        self.dataset, self.reads = dataset, 0

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        self.reads += 1
        return self.dataset[i]


def test_an_evaluation_reads_each_example_once_and_scores_as_two_passes_do():
    config = from_dict(ExperimentConfig, RECIPE)
    model, data = build(config)
    data.val = CountingReads(data.val)
    trainer = Trainer(model, data, config.train, None, World())
    metrics = trainer.evaluate("val")
    assert data.val.reads == len(data.val)

    # the figures of a loss pass and a separate metrics pass, as the trainer computed them before
    loader = torch.utils.data.DataLoader(data.val, config.train.batch_size, collate_fn=data.collate)
    model.eval()
    with torch.no_grad():
        sums = torch.zeros(2)
        for batch in loader:
            out = model(batch)
            sums += torch.stack([out["loss"].float() * out["loss_weight"], torch.tensor(float(out["loss_weight"]))])
        errors = forecast_errors(model, loader)
    assert metrics["loss"] == (sums[0] / sums[1]).item()
    assert metrics["mse"] == errors["mse"] and metrics["mae"] == errors["mae"]


def test_predict_builds_the_evaluation_transform_once_for_many_files(tmp_path, monkeypatch):
    built = []
    original = predict.eval_transform
    monkeypatch.setattr(predict, "eval_transform", lambda *a, **k: built.append(a) or original(*a, **k))
    predict.transform_of.cache_clear()
    spec = {"image_size": [8, 8], "channels": 3, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    images = []
    for i in range(5):
        Image.new("RGB", (12, 10), (40 * i, 20, 200)).save(tmp_path / f"{i}.png")
        images.append(predict.load_image(tmp_path / f"{i}.png", spec))
    assert len(built) == 1
    expected = original([8, 8], [0.5] * 3, [0.25] * 3)(Image.open(tmp_path / "4.png").convert("RGB"))
    assert torch.equal(images[-1], expected)
    predict.transform_of.cache_clear()


def test_an_evaluation_draws_from_torchs_generator_as_the_two_readings_did():
    """Training after an evaluation goes on as it did when the split was read twice (each DataLoader iterator
    draws its seed from torch's generator), so that runs recorded in benchmarks/ reproduce to the bit."""
    config = from_dict(ExperimentConfig, RECIPE)
    model, data = build(config)
    trainer = Trainer(model, data, config.train, None, World())
    torch.manual_seed(7)
    trainer.evaluate("val")
    after_evaluation = torch.rand(3)
    torch.manual_seed(7)
    loader = torch.utils.data.DataLoader(data.val, config.train.batch_size, collate_fn=data.collate)
    iter(loader), iter(loader)
    assert torch.equal(after_evaluation, torch.rand(3))
