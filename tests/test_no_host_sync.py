"""A model's forward never copies from the host to the GPU nor reads a value back: on a GPU either waits for
every kernel queued before it, so the CPU cannot queue the backward while the forward still runs (each
classifier and forecaster did, in ``torch.tensor(B, device=...)`` for its loss weight, until the GPU check on an
H200 showed xformer's small ViT step 5 % slower than timm's).

Checked without a GPU: the recipes' models run on fake CUDA tensors (``FakeTensorMode``), where a host copy is an
``aten._to_copy`` of a CPU tensor to CUDA, and a value read back (``.item()``, ``.tolist()``, ``if tensor:``)
raises ``DataDependentOutputException``."""
import traceback

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.func import functional_call
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import DataLoader

from xformer import build_model
from xformer.batch import LABELS
from xformer.train.config import load_experiment
from xformer.train.evaluation import dict_batch
from xformer.train.implied_args import with_implied_args
from xformer.train.run import build


class HostCopies(TorchDispatchMode):
    """Records every copy of a CPU tensor to CUDA, with the lines of code that asked for it."""

    def __init__(self):
        super().__init__()
        self.copies: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        device = kwargs.get("device")
        if func is torch.ops.aten._to_copy.default and args[0].device.type == "cpu" and device is not None \
                and torch.device(device).type == "cuda":
            self.copies.append("".join(line for line in traceback.format_stack() if "site-packages" not in line))
        return func(*args, **kwargs)


def forward_on_fake_cuda(model: torch.nn.Module, batch: dict) -> list[str]:
    """The host copies of one training-mode forward of ``model`` on ``batch``, both moved to fake CUDA."""
    model.train()
    fake = FakeTensorMode()
    with fake:
        to_cuda = {k: fake.from_tensor(v).to("cuda") for k, v in [*model.named_parameters(), *model.named_buffers()]}
        cuda_batch = {k: fake.from_tensor(v).to("cuda") if torch.is_tensor(v) else v for k, v in batch.items()}
        with HostCopies() as seen:
            out = functional_call(model, to_cuda, (cuda_batch,))
        assert out["loss"].device.type == "cuda" and out["loss_weight"].device.type == "cuda"
    return seen.copies


def first_batch(data, size: int = 4) -> dict:
    loader = DataLoader(data.train, batch_size=size, shuffle=False, collate_fn=data.collate)
    return dict_batch(next(iter(loader)), "training")


BUILT_IN_DATA = ["vit_digits", "cct_digits", "cnn_digits", "copy", "reverse", "seq2seq_text", "bert_mlm",
                 "patchtst_classify", "fcn_classify"]


@pytest.mark.parametrize("recipe", BUILT_IN_DATA)
def test_recipes_forward_without_host_copies(recipe):
    model, data = build(load_experiment(f"tasks/{recipe}.yaml"))
    batch = first_batch(data)
    assert LABELS in batch or "targets" in batch
    assert forward_on_fake_cuda(model, batch) == []


@pytest.mark.parametrize("recipe", ["patchtst_etth1_96", "dlinear_etth1"])
def test_forecasters_forward_without_host_copies(recipe):
    config = load_experiment(f"tasks/{recipe}.yaml").model
    model = build_model(with_implied_args(config, {"tokenizer": {"n_channels": 7, "input_len": 336},
                                                   "head": {"horizon": 96}}))
    batch = {"inputs": torch.randn(4, 336, 7), "targets": torch.randn(4, 96, 7)}
    assert forward_on_fake_cuda(model, batch) == []


def test_the_check_sees_a_host_copy_and_names_its_line():
    class CountingHead(torch.nn.Module):
        def forward(self, batch):
            loss = batch["x"].square().mean()
            return {"loss": loss, "loss_weight": torch.tensor(batch["x"].shape[0], device=loss.device)}

    copies = forward_on_fake_cuda(CountingHead(), {"x": torch.randn(3, 2)})
    assert len(copies) == 1 and "torch.tensor(batch" in copies[0]
