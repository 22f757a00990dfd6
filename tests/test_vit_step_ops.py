"""The ViT training step's host-side work, counted against timm's on the same weights (no GPU needed).

At small sizes a GPU step is bound by what the CPU does per op (Python, the dispatcher, the autograd engine), not by
FLOPs: the H200 check measured xformer's small ViT step 3-7 % slower than timm's (benchmarks/README.md). Each torch
call the forward makes, and each op that reaches a kernel in forward and backward, is counted here for both."""
import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

timm = pytest.importorskip("timm")
from timm.models.vision_transformer import VisionTransformer  # noqa: E402

from xformer.core import CoreConfig, build  # noqa: E402
from xformer.interop import from_timm_vit  # noqa: E402

SIZE = dict(img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=10)


METADATA = {"__get__", "dim", "is_floating_point"}  # attribute reads and queries the tensor answers itself


class TorchCalls(TorchFunctionMode):
    """Every torch function and tensor method called from Python that goes through the dispatcher."""

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", str(func))
        if name not in METADATA:
            self.calls.append(name)
        return func(*args, **(kwargs or {}))


class KernelOps(TorchDispatchMode):
    """Every op that reaches a backend (below autograd and autocast) other than a view: a kernel on a GPU."""

    def __init__(self):
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not (func.is_view or func._schema.name in ("aten::detach", "aten::alias")):
            self.ops.append(func._schema.name)
        return func(*args, **(kwargs or {}))


def pair():
    torch.manual_seed(0)
    vit = VisionTransformer(**SIZE).train()
    model = from_timm_vit(vit).train()
    images, labels = torch.randn(2, 3, 32, 32), torch.tensor([1, 7])
    return (lambda: model({"images": images, "labels": labels})["loss"],
            lambda: torch.nn.functional.cross_entropy(vit(images), labels))


def test_a_block_calls_no_idle_part_unless_it_has_hooks():
    block = build.encoder(CoreConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32)).blocks[0].train()
    x = torch.randn(2, 5, 16)
    called = []
    everyone = torch.nn.modules.module.register_module_forward_pre_hook(lambda m, args: called.append(type(m)))
    try:
        reference = block(x)
    finally:
        everyone.remove()
    assert torch.nn.Linear in called and not [c for c in called if issubclass(c, (torch.nn.Identity, torch.nn.Dropout))]
    seen = []
    block.res1.scale.register_forward_hook(lambda m, args, out: seen.append("scale"))
    block.mlp.drop.register_forward_pre_hook(lambda m, args: seen.append("drop"))
    assert torch.equal(block(x), reference) and seen == ["scale", "drop"]
    block.attn.proj_drop.p = 0.5  # set after building: it drops
    assert not torch.equal(block(x), reference)
    assert torch.equal(block.eval()(x), reference)  # in eval mode it does not


def test_vit_forward_makes_no_more_torch_calls_than_timm():
    ours, theirs = pair()
    counts = []
    for loss in (ours, theirs):
        with TorchCalls() as seen:
            loss()
        counts.append(len(seen.calls))
    assert counts[0] <= counts[1], counts


def test_vit_forward_and_backward_launch_no_more_kernels_than_timm():
    ours, theirs = pair()
    kernels = []
    for loss in (ours, theirs):
        with KernelOps() as seen:
            loss().backward()
        kernels.append(len(seen.ops))
    assert kernels[0] <= kernels[1], kernels
