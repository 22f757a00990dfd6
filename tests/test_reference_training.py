"""The training recipe's parts against the code they follow: MixUp / CutMix and the soft-target and
label-smoothing losses (timm), distillation (DeiT's DistillationLoss), repeated augmentation (timm's
RepeatAugSampler), the weight average (timm's ModelEmaV3), SAM / ASAM (davda54/sam), the warm-up + cosine
schedule (timm's CosineLRScheduler), stochastic depth (timm's VisionTransformer) and top-k accuracy
(timm.utils.accuracy).

DeiT's loss and davda54's SAM are transcribed below from the repository, path and commit named above them.
timm comes from the project's environment.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.train.config import Distill, Ema, Sam, TrainConfig
from xformer.train.distill import Distillation, distillation_loss
from xformer.train.ema import WeightAverage
from xformer.train.optim import build_scheduler
from xformer.train.sam import SharpnessAware
from xformer.train.samplers import RepeatedAugmentSampler

timm = pytest.importorskip("timm")

K = 10


def tiny_vit(seed: int, label_smoothing: float = 0.0, **core) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(ModelConfig(
        "encoder", CoreConfig(**{"d_model": 32, "n_layers": 2, "n_heads": 4, "d_ff": 64, **core}),
        PartConfig("image_patches", {"image_size": 8, "patch_size": 2, "channels": 1}),
        PartConfig("classification", {"n_classes": K, "pool": "cls", "label_smoothing": label_smoothing})))


# ================================================================ MixUp / CutMix and the losses

@pytest.fixture(scope="module")
def digits_batch():
    from xformer.data.registry import build_data

    data = build_data("digits", {"image_size": 16, "mixup": 0.8, "cutmix": 1.0, "label_smoothing": 0.1})
    items = [data.train[i] for i in range(16)]
    return data, items, torch.stack([it["images"] for it in items]), torch.stack([it["labels"] for it in items])


def mixed_by_hand(x, y, seed, smoothing=0.1):
    """timm's batch MixUp / CutMix written out, drawing from numpy's global generator in timm's order:
    mix? (prob 1), CutMix? (switch_prob 0.5), lam ~ Beta(1, 1) for CutMix, Beta(0.8, 0.8) for MixUp;
    MixUp x~ = lam x + (1 - lam) x.flip(0); CutMix pastes the flipped batch into a box of side sqrt(1 - lam),
    centre uniform, clipped at the border, and lam = 1 - box area / (H W); y~ = lam y_s + (1 - lam) y_s.flip(0)
    with y_s the one-hot targets smoothed to (1 - eps + eps/K, eps/K)."""
    np.random.seed(seed)
    assert np.random.rand() < 1.0
    cutmix = np.random.rand() < 0.5
    lam = float(np.random.beta(1.0, 1.0) if cutmix else np.random.beta(0.8, 0.8))
    clipped = False
    if cutmix:
        h, w = x.shape[-2:]
        ch, cw = int(h * np.sqrt(1 - lam)), int(w * np.sqrt(1 - lam))
        cy, cx = np.random.randint(0, h), np.random.randint(0, w)
        top, bottom = np.clip(cy - ch // 2, 0, h), np.clip(cy + (ch + 1) // 2, 0, h)
        left, right = np.clip(cx - cw // 2, 0, w), np.clip(cx + (cw + 1) // 2, 0, w)
        clipped = bottom - top < ch or right - left < cw
        x = x.clone()
        x[:, :, top:bottom, left:right] = x.flip(0)[:, :, top:bottom, left:right]
        lam = 1 - (bottom - top) * (right - left) / (h * w)
    else:
        x = x * lam + x.flip(0) * (1 - lam)
    one_hot = torch.full((len(y), K), smoothing / K).scatter_(1, y[:, None], 1 - smoothing + smoothing / K)
    return x, one_hot * lam + one_hot.flip(0) * (1 - lam), "cutmix" if cutmix else "mixup", clipped


def test_mixup_cutmix_batches_are_timms_and_the_formulas(digits_batch):
    """digits(mixup=0.8, cutmix=1.0, label_smoothing=0.1) collates as timm.data.Mixup(0.8, 1.0, prob 1,
    switch_prob 0.5, mode 'batch', smoothing 0.1) on the same numpy state, and as the formulas."""
    from timm.data import Mixup

    data, items, x, y = digits_batch
    seen = set()
    for seed in range(14):
        np.random.seed(seed)
        ours = data.collate(items)
        np.random.seed(seed)
        images, targets = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, mode="batch",
                                label_smoothing=0.1, num_classes=K)(x.clone(), y.clone())
        assert torch.equal(ours["images"], images) and torch.equal(ours["labels"], targets)
        images, targets, kind, clipped = mixed_by_hand(x, y, seed)
        torch.testing.assert_close(ours["images"], images)
        torch.testing.assert_close(ours["labels"], targets)
        seen |= {kind, "clipped box"} if clipped else {kind}
    assert seen == {"mixup", "cutmix", "clipped box"}


def test_the_heads_losses_are_timms_soft_target_and_label_smoothing_cross_entropy(digits_batch):
    from timm.data import Mixup
    from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

    from xformer.heads.classification import classification_output

    data, items, x, y = digits_batch
    logits = 3 * torch.randn(len(y), K, generator=torch.Generator().manual_seed(0))
    np.random.seed(0)
    soft = data.collate(items)["labels"]
    torch.testing.assert_close(classification_output(logits, {"labels": soft})["loss"],
                               SoftTargetCrossEntropy()(logits, soft))
    for eps in (0.1, 0.3):
        torch.testing.assert_close(classification_output(logits, {"labels": y}, eps)["loss"],
                                   LabelSmoothingCrossEntropy(eps)(logits, y))
    # smoothing once: the head's on unsmoothed mixed targets equals Mixup's with the head's at 0 (docs/vision.md)
    np.random.seed(3)
    raw = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.0, num_classes=K)(x.clone(), y.clone())[1]
    np.random.seed(3)
    smoothed = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=K)(x.clone(), y.clone())[1]
    torch.testing.assert_close(classification_output(logits, {"labels": raw}, 0.1)["loss"],
                               classification_output(logits, {"labels": smoothed}, 0.0)["loss"])


# ================================================================ distillation
# REFERENCE: facebookresearch/deit @ ae4dba9b453b9e18faa781edbc13039aaeca9b68, losses.py DistillationLoss

class DeiTDistillationLoss(torch.nn.Module):
    def __init__(self, base_criterion: torch.nn.Module, teacher_model: torch.nn.Module,
                 distillation_type: str, alpha: float, tau: float):
        super().__init__()
        self.base_criterion = base_criterion
        self.teacher_model = teacher_model
        assert distillation_type in ['none', 'soft', 'hard']
        self.distillation_type = distillation_type
        self.alpha = alpha
        self.tau = tau

    def forward(self, inputs, outputs, labels):
        outputs_kd = None
        if not isinstance(outputs, torch.Tensor):
            outputs, outputs_kd = outputs
        base_loss = self.base_criterion(outputs, labels)
        if self.distillation_type == 'none':
            return base_loss
        with torch.no_grad():
            teacher_outputs = self.teacher_model(inputs)
        if self.distillation_type == 'soft':
            T = self.tau
            distillation_loss = F.kl_div(
                F.log_softmax(outputs_kd / T, dim=1),
                F.log_softmax(teacher_outputs / T, dim=1),
                reduction='sum',
                log_target=True
            ) * (T * T) / outputs_kd.numel()
        elif self.distillation_type == 'hard':
            distillation_loss = F.cross_entropy(outputs_kd, teacher_outputs.argmax(dim=1))
        loss = base_loss * (1 - self.alpha) + distillation_loss * self.alpha
        return loss
# ---------------------------------------------------------------- end of the DeiT reference


def deit_terms(base_criterion, teacher, inputs, logits, labels, kind, tau):
    """DeiT's base loss and distillation term, the class head's logits standing for the distillation token's
    (xformer distils into the class head: "DeiT without the distillation token")."""
    def loss(alpha):
        return DeiTDistillationLoss(base_criterion, teacher, kind, alpha, tau)(inputs, (logits, logits), labels)
    return loss(0.0), loss(1.0)


@pytest.mark.parametrize("kind, alpha, tau", [("hard", 0.5, 1.0), ("hard", 0.3, 1.0), ("soft", 0.5, 1.0),
                                              ("soft", 0.5, 3.0)])
def test_distillation_loss_is_deits_with_the_soft_term_summed_over_classes(kind, alpha, tau):
    """hard: DeiT's loss exactly. soft: DeiT divides its summed KL by B*K, xformer by B (documented), so
    xformer's soft term is K times DeiT's."""
    g = torch.Generator().manual_seed(0)
    student, teacher = 2 * torch.randn(8, K, generator=g), 2 * torch.randn(8, K, generator=g)
    labels = torch.randint(0, K, (8,), generator=g)
    base, term = deit_terms(nn.CrossEntropyLoss(), lambda _: teacher, None, student, labels, kind, tau)
    expected = (1 - alpha) * base + alpha * (K if kind == "soft" else 1) * term
    got = distillation_loss(F.cross_entropy(student, labels), student, teacher, Distill("t", kind, alpha, tau))
    torch.testing.assert_close(got, expected)
    if kind == "hard":
        torch.testing.assert_close(got, DeiTDistillationLoss(nn.CrossEntropyLoss(), lambda _: teacher, kind, alpha,
                                                             tau)(None, (student, student), labels))


@pytest.mark.parametrize("kind, alpha, tau", [("soft", 0.5, 3.0), ("hard", 0.5, 1.0)])
def test_a_distilled_students_training_loss_is_deits(kind, alpha, tau):
    """The forward hook on a tiny student, its head smoothing labels by 0.1 (DeiT's base criterion then is timm's
    LabelSmoothingCrossEntropy(0.1)), against DistillationLoss with the same frozen teacher."""
    from timm.loss import LabelSmoothingCrossEntropy

    teacher = tiny_vit(1).eval().requires_grad_(False)
    student = tiny_vit(0, label_smoothing=0.1).train()
    student.register_forward_hook(Distillation(teacher, Distill("t", kind, alpha, tau)))
    g = torch.Generator().manual_seed(2)
    images, labels = torch.rand(8, 1, 8, 8, generator=g), torch.randint(0, K, (8,), generator=g)
    out = student({"images": images, "labels": labels})
    base, term = deit_terms(LabelSmoothingCrossEntropy(0.1), lambda inputs: teacher(inputs)["logits"],
                            {"images": images}, out["logits"], labels, kind, tau)
    torch.testing.assert_close(out["loss"], (1 - alpha) * base + alpha * (K if kind == "soft" else 1) * term)


# ================================================================ repeated augmentation

@pytest.mark.parametrize("n", [10, 100, 257])
def test_repeated_augmentation_order_is_timms(n):
    """Position by position on every rank, the first floor(n / world) of timm's RepeatAugSampler order with
    selected_round=0 (timm keeps ceil(n / world); its default selected_round=256 shortens epochs of n >= 256
    to a multiple of 256). timm seeds its permutation with the epoch, xformer with seed + epoch."""
    from timm.data.distributed_sampler import RepeatAugSampler

    for world in (1, 2, 3):
        for repeats in (2, 3):
            for seed, epoch in ((0, 0), (0, 5), (2, 1)):
                for rank in range(world):
                    ours = RepeatedAugmentSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed,
                                                  drop_last=True, repeats=repeats)
                    ours.set_epoch(epoch)
                    theirs = RepeatAugSampler(range(n), num_replicas=world, rank=rank, num_repeats=repeats,
                                              selected_round=0)
                    theirs.set_epoch(seed + epoch)
                    order, reference = list(ours), list(theirs)
                    assert len(order) == n // world and order == reference[:len(order)]


# ================================================================ weight average

@pytest.mark.parametrize("decay, warmup", [(0.9, False), (0.99, True)])
def test_the_weight_average_is_timms_model_ema_v3(decay, warmup):
    """Every state-dict entry, BatchNorm statistics included, after every one of 12 SGD steps (step t passed
    as timm's train.py passes num_updates); d_1 = 0 and the warm-up d_t as timm's get_decay."""
    from timm.utils import ModelEmaV3

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    ours = WeightAverage(model, Ema(enabled=True, decay=decay, warmup=warmup))
    theirs = ModelEmaV3(model, decay=decay, use_warmup=warmup)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for t in range(1, 13):
        F.cross_entropy(model(torch.randn(8, 1, 8, 8)), torch.randint(0, 3, (8,))).backward()
        optimizer.step(), optimizer.zero_grad()
        ours.update(model, step=t), theirs.update(model, step=t)
        assert ours.decay_at(t) == pytest.approx(theirs.get_decay(t), abs=1e-15)
        expected = theirs.module.state_dict()
        for name, value in ours.module.state_dict().items():
            assert torch.equal(value, expected[name]), (t, name)


# ================================================================ SAM / ASAM
# REFERENCE: davda54/sam @ 87a9604896bac2f0f7182b20fa3ade725b0e956b, sam.py SAM (first_step / second_step, the
# update of the example's training loop); example/utility/bypass_bn.py @ 3c3afdbd71cff2462ec91c734b3d1170bd0f3707
# (disable_running_stats / enable_running_stats)

class Davda54SAM(torch.optim.Optimizer):
    def __init__(self, params, base_optimizer, rho=0.05, adaptive=False, **kwargs):
        assert rho >= 0.0, f"Invalid rho, should be non-negative: {rho}"
        defaults = dict(rho=rho, adaptive=adaptive, **kwargs)
        super(Davda54SAM, self).__init__(params, defaults)
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

    @torch.no_grad()
    def first_step(self, zero_grad=False):
        grad_norm = self._grad_norm()
        for group in self.param_groups:
            scale = group["rho"] / (grad_norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                self.state[p]["old_p"] = p.data.clone()
                e_w = (torch.pow(p, 2) if group["adaptive"] else 1.0) * p.grad * scale.to(p)
                p.add_(e_w)  # climb to the local maximum "w + e(w)"
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad=False):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                p.data = self.state[p]["old_p"]  # get back to "w" from "w + e(w)"
        self.base_optimizer.step()  # do the actual "sharpness-aware" update
        if zero_grad:
            self.zero_grad()

    def _grad_norm(self):
        shared_device = self.param_groups[0]["params"][0].device
        return torch.norm(torch.stack([
            ((torch.abs(p) if group["adaptive"] else 1.0) * p.grad).norm(p=2).to(shared_device)
            for group in self.param_groups for p in group["params"] if p.grad is not None]), p=2)


def disable_running_stats(model):
    def _disable(module):
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.backup_momentum = module.momentum
            module.momentum = 0
    model.apply(_disable)


def enable_running_stats(model):
    def _enable(module):
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and hasattr(module, "backup_momentum"):
            module.momentum = module.backup_momentum
    model.apply(_enable)
# ---------------------------------------------------------------- end of the davda54 reference


@pytest.mark.parametrize("rho, adaptive", [(0.05, False), (0.5, True)])
def test_sam_steps_are_davda54s(rho, adaptive):
    """Three SGD steps of a small CNN with BatchNorm: weights and running statistics as davda54's loop leaves them.
    ASAM at eta = 0 is davda54's adaptive form, T = |w| for every parameter (SamsungLabs/ASAM scales only the
    parameters named *weight*)."""
    def cnn():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))

    ours, theirs, plain = cnn().train(), cnn().train(), cnn().train()
    sam = SharpnessAware(ours, Sam(rho=rho, adaptive=adaptive, eta=0.0))
    optimizer = torch.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    plain_optimizer = torch.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9)
    reference = Davda54SAM(theirs.parameters(), torch.optim.SGD, rho=rho, adaptive=adaptive, lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        x, y = torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 3, (8,), generator=g)
        F.cross_entropy(ours(x), y).backward()
        with sam.perturbed():
            F.cross_entropy(ours(x), y).backward()
        optimizer.step(), optimizer.zero_grad()
        enable_running_stats(theirs)
        F.cross_entropy(theirs(x), y).backward()
        reference.first_step(zero_grad=True)
        disable_running_stats(theirs)
        F.cross_entropy(theirs(x), y).backward()
        reference.second_step(zero_grad=True)
        F.cross_entropy(plain(x), y).backward()
        plain_optimizer.step(), plain_optimizer.zero_grad()
        expected = theirs.state_dict()
        for name, value in ours.state_dict().items():
            if not name.endswith("num_batches_tracked"):  # davda54's second pass counts a batch (momentum 0)
                torch.testing.assert_close(value, expected[name], msg=name)
    assert not torch.allclose(plain[0].weight, ours[0].weight, rtol=1e-3, atol=1e-4)  # SAM is not plain SGD


# ================================================================ schedule and stochastic depth

@pytest.mark.parametrize("total, warmup, lr, min_lr", [(100, 10, 1e-3, 0.0), (100, 10, 1e-3, 1e-5),
                                                       (50, 0, 1e-3, 1e-4), (3200, 40, 3e-3, 0.0)])
def test_warmup_and_cosine_are_timms_cosine_lr_scheduler(total, warmup, lr, min_lr):
    """Per optimizer step: lr (t+1)/(w+1) for t < w, then cosine from lr to min_lr over the other T - w steps;
    timm's CosineLRScheduler(t_initial=T-w, warmup_t=w, warmup_lr_init=lr/(w+1), warmup_prefix=True) stepped
    with step_update (tasks/vit_digits.yaml: 3,200 steps, warm-up 40)."""
    from timm.scheduler import CosineLRScheduler

    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = build_scheduler(optimizer, TrainConfig(steps=total, lr=lr, warmup_steps=warmup, min_lr=min_lr),
                                total, 10)
    timm_optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    timm_scheduler = CosineLRScheduler(timm_optimizer, t_initial=total - warmup, lr_min=min_lr, warmup_t=warmup,
                                       warmup_lr_init=lr / (warmup + 1), warmup_prefix=True, t_in_epochs=False)
    ours, theirs = [], []
    for t in range(total):
        ours.append(optimizer.param_groups[0]["lr"])
        optimizer.step(), scheduler.step()
        timm_scheduler.step_update(t)
        theirs.append(timm_optimizer.param_groups[0]["lr"])
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-12 * lr)


def test_stochastic_depth_is_timms_in_training_mode():
    """An xformer ViT loaded into timm's VisionTransformer(drop_path_rate=0.3): the same logits in training mode
    from the same seed, so the same per-sample masks, 1/(1-p) scaling and per-block rates linspace(0, 0.3, 4)."""
    from timm.models.vision_transformer import VisionTransformer

    from xformer.interop import to_timm_state_dict

    ours = tiny_vit(0, n_layers=4, d_ff=128, norm_eps=1e-6, drop_path=0.3, init="torch")
    theirs = VisionTransformer(img_size=8, patch_size=2, in_chans=1, num_classes=K, embed_dim=32, depth=4,
                               num_heads=4, drop_path_rate=0.3)
    theirs.load_state_dict(to_timm_state_dict(ours), strict=True)
    ours.train(), theirs.train()
    images = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    for seed in range(3):
        torch.manual_seed(seed)
        logits = ours({"images": images})["logits"]
        torch.manual_seed(seed)
        torch.testing.assert_close(logits, theirs(images))
    torch.manual_seed(0)
    assert not torch.allclose(ours({"images": images})["logits"], ours({"images": images})["logits"])


# ================================================================ accuracy

class FixedLogits(nn.Module):
    """A classifier that answers the given logits, batch after batch."""

    def __init__(self, logits):
        super().__init__()
        self.logits, self.seen, self.anchor = logits, 0, nn.Parameter(torch.zeros(1))

    def forward(self, batch):
        n = batch["images"].shape[0]
        self.seen += n
        return {"logits": self.logits[self.seen - n:self.seen]}


@pytest.mark.parametrize("n_classes, ties", [(10, True), (10, False), (7, True), (5, False), (100, True)])
def test_top1_and_top5_accuracy_are_timms(n_classes, ties):
    """Counts of correct examples over uneven batches; integer logits make many ties. top-5 only for K > 5."""
    from timm.utils import accuracy

    from xformer.metrics_classification import evaluate_classifier

    g = torch.Generator().manual_seed(n_classes)
    n = 203
    logits = (torch.randint(0, 4, (n, n_classes), generator=g).float() if ties
              else torch.randn(n, n_classes, generator=g))
    labels = torch.randint(0, n_classes, (n,), generator=g)
    bounds = [0, 64, 128, 192, n]
    batches = [{"images": torch.zeros(b - a, 1), "labels": labels[a:b]} for a, b in zip(bounds, bounds[1:])]
    ours = evaluate_classifier(FixedLogits(logits), batches)
    top = (1, 5) if n_classes > 5 else (1,)
    theirs = dict(zip(("accuracy", "top5_accuracy"), (v.item() / 100 for v in accuracy(logits, labels, topk=top))))
    assert ours.keys() == theirs.keys()
    assert {k: round(v * n) for k, v in ours.items()} == {k: round(v * n) for k, v in theirs.items()}
