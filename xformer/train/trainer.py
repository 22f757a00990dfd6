"""The training loop: accumulate, normalise by the real target count, clip, step, evaluate, save.

One optimizer step over a global batch split into micro-batches b (across
``grad_accum`` and the world's ranks), where head output i averaged its loss
L_i over w_i targets ("loss", "loss_weight"):

    L = sum_i w_i L_i / sum_i w_i

so accumulating 2 micro-batches of B equals one batch of 2B token for token,
however many padded positions each holds. Each micro-batch back-propagates
w_i L_i; DDP / FSDP2 average the gradients over the R ranks; the trainer then
multiplies them by R / W (W = all-reduced sum of w_i) before clipping.

With ``train.sam`` the gradient of each step is taken again at the sharpest nearby weights (sam.py):
the same micro-batches go through a second forward / backward pass before the optimizer steps.

With ``train.ema`` a moving average of the weights follows every optimizer step
(ema.WeightAverage; the equation is in config.Ema); evaluation, the best
checkpoint and the final metrics then use the average.
"""
from __future__ import annotations

import itertools
import math
import signal
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..data.registry import DataBundle
from ..errors import ConfigError, UserError
from ..folder_lock import hold_folder
from ..models import clear_stepped_untrained
from .checkpoint import EMA_FILE, checkpoint_dir, load_weights, read_state, read_trainer, read_weights, \
    remove_stale_temporaries, save_checkpoint, tied_aliases
from .config import TrainConfig
from .diverged import diverged_message
from .distributed import World, all_sum, barrier, full_state, gather, grad_sync, load_full_state, wrap
from .ema import WeightAverage
from .evaluation import classes_of, dict_batch, evaluate_batches, loss_of, split_of
from .interrupt import TrainingInterrupted, deferred_stop
from .metrics import RunLog, early_stopping_value, flat
from .optim import build_optimizer, build_scheduler
from .progress import Progress
from .recompute import checkpoint_blocks
from .rng import rng_state, set_rng_state
from .samplers import RepeatedAugmentSampler, ResumableSampler
from .sam import SharpnessAware


class TrainingDiverged(UserError):
    """The loss became NaN or infinite."""


class Trainer:
    """Train ``model`` on ``data`` as ``config`` says; checkpoints and logs go to ``run_dir`` (rank 0).

    ``recipe``: the whole experiment (config.yaml's content), recorded in every checkpoint's state.json.
    ``after_save``: called after each checkpoint is saved (e.g. to let an ``--overwrite`` drop the old run).
    """

    def __init__(self, model: torch.nn.Module, data: DataBundle, config: TrainConfig, run_dir: Path | None,
                 world: World, recipe: dict | None = None):
        self.cfg, self.data, self.world, self.recipe = config, data, world, recipe
        self.after_save: Callable[[], None] | None = None
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.aliases, self.model = tied_aliases(model), model.to(world.device)
        self.n_classes = classes_of(model, recipe)  # labels beyond them are refused (dict_batch)
        # a model without parameters to learn (the last_value and seasonal_naive baselines) trains nothing: its
        # steps only run it forward, and its evaluations and run folder are any run's
        self.learns = any(p.requires_grad for p in self.model.parameters())
        self.sharded = config.distributed == "fsdp" and world.size > 1
        if self.sharded and config.ema.enabled:  # the average would need the full weights on every step
            raise ConfigError("train.ema needs the whole model on every process; use train.distributed=ddp "
                              "or set train.ema.enabled=false")
        if self.sharded and config.sam.rho > 0:  # ||g|| and e(w) would need the sharded gradients gathered
            raise ConfigError("train.sam needs the whole model on every process; use train.distributed=ddp "
                              "or set train.sam.rho=0")
        self.sam = SharpnessAware(self.model, config.sam) if config.sam.rho > 0 else None
        # copied before DDP wraps the model (the unwrapped module) and before its blocks recompute (recompute.py)
        self.ema = WeightAverage(self.model, config.ema) if config.ema.enabled else None
        if config.activation_checkpointing:
            checkpoint_blocks(self.model)
        self.engine = wrap(self.model, config.distributed, world)
        if config.compile:
            self.engine = torch.compile(self.engine)
        if world.size > 1:  # different dropout masks on different ranks
            torch.manual_seed(config.seed + world.rank)

        split = world.size * config.grad_accum
        if config.batch_size % split:
            raise ConfigError(f"train.batch_size={config.batch_size} must be a multiple of grad_accum x processes "
                              f"= {config.grad_accum} x {world.size}")
        self.micro = config.batch_size // split
        sampler, repeats = ((RepeatedAugmentSampler, {"repeats": config.aug_repeats}) if config.aug_repeats > 1
                            else (ResumableSampler, {}))
        self.sampler = sampler(data.train, num_replicas=world.size, rank=world.rank, shuffle=True,
                               seed=config.seed, drop_last=True, **repeats)
        self.loader = DataLoader(data.train, self.micro, sampler=self.sampler, collate_fn=data.collate,
                                 num_workers=config.num_workers, drop_last=True,
                                 generator=torch.Generator().manual_seed(config.seed))
        self.steps_per_epoch = len(self.loader) // config.grad_accum
        if self.steps_per_epoch == 0:
            most = len(data.train) // split * split  # full batches only (drop_last), as timm's training loader
            raise ConfigError(f"the training split has {len(data.train)} examples, fewer than one batch of "
                              f"train.batch_size={config.batch_size}; "
                              + (f"set train.batch_size to at most {most} (a multiple of grad_accum x processes), "
                                 "or give more training data" if most else "give more training data"))
        self.total_steps = config.steps or config.epochs * self.steps_per_epoch
        self.optimizer = build_optimizer(self.model, config)
        self.scheduler = build_scheduler(self.optimizer, config, self.total_steps, self.steps_per_epoch)
        self.autocast = torch.autocast(world.device.type, torch.bfloat16, enabled=config.precision == "bf16")
        self.step, self.epoch, self.seen_in_epoch = 0, 0, 0  # seen_in_epoch: examples, all ranks together
        self.best, self.best_step, self.bad_evals, self.last_saved = None, None, 0, None
        # why the loop ended before total_steps ("early_stopping", "max_seconds"), recorded in state.json
        self.stopped_by: str | None = None
        self.folder_lock, self.prune_warned = None, False  # the claim on run_dir (rank 0); a warning said once
        self.replacing = False  # an --overwrite: the old run comes back if this one stops before its first checkpoint
        self.best_val: dict[str, float] | None = None  # the val metrics at best_step, measured in this process
        # seconds spent in fit() by earlier sessions of the run (from the checkpoint resumed) and this one's start
        self.seconds_before, self.session_start = 0.0, None
        # the training losses since the last logged step and when their window started (perf_counter), saved in
        # each checkpoint so that a resumed run logs the train_loss an uninterrupted one logs
        self.window: list[float] = []
        self.window_start, self.window_seconds = None, 0.0  # window_seconds: spent before this session

    @property
    def train_seconds(self) -> float:
        """Seconds spent in ``fit`` over every session of the run, this one so far included: a resumed run
        adds its own to those its checkpoint recorded (the time between that checkpoint and a crash is lost)."""
        running = time.perf_counter() - self.session_start if self.session_start is not None else 0.0
        return self.seconds_before + running

    # ---- the loop -------------------------------------------------------------------------------------
    def fit(self, log: RunLog | None = None, progress: Progress | None = None) -> None:
        """Train to ``total_steps`` (or until early stopping / ``max_seconds``). ``progress``: that of a
        larger job (e.g. ``xformer compare``) to advance instead of opening one for this run.

        A run resumed after early stopping (its patience ran out: ``bad_evals >= patience``) trains no further:
        the resume finishes what the stop left (final metrics, report), as the uninterrupted run did. A larger
        ``train.early_stopping.patience`` given to the resume lets it train on. A run stopped by
        ``max_seconds`` trains on when resumed: the limit is per session, and the resume asks for more time."""
        self.claim_run_folder()
        own_progress = progress is None or not self.world.main  # rank 0 alone shows progress
        if own_progress:
            progress = Progress(self.total_steps, initial=self.step, shown=self.world.main)
        graceful = self.world.size == 1 and self.cfg.num_workers == 0  # interrupt.py says why only then
        handlers = ExitStack()
        try:
            stop = handlers.enter_context(deferred_stop(graceful, twice=self.stopped_twice_message))
            handlers.enter_context(torch.enable_grad())  # whatever the caller set (a notebook's set_grad_enabled)
            batches, fit_start, first_step = self._batches(), time.perf_counter(), self.step
            self.session_start = fit_start
            self.window_start, self.window_seconds = fit_start - self.window_seconds, 0.0
            while self.step < self.total_steps and not self.patience_ran_out:
                loss, _ = self._step(batches)
                self.step += 1
                if self.ema is not None:  # identical on every rank, as DDP keeps the weights identical
                    self.ema.update(self.model, step=self.step)
                self.window.append(loss)
                progress.update()
                if self.step % self.cfg.log_every == 0 or self.step == self.total_steps:
                    seconds = time.perf_counter() - self.window_start
                    values = {"train_loss": sum(self.window) / len(self.window),
                              "lr": self.scheduler.get_last_lr()[0],
                              "examples_per_second": len(self.window) * self.cfg.batch_size / seconds}
                    # the steps left at this session's pace so far (evaluations and checkpoints included)
                    left = (time.perf_counter() - fit_start) / (self.step - first_step) * (self.total_steps - self.step)
                    progress.log(self.step, self.total_steps, values, left)
                    if log:
                        log.write(self.step, values, left)
                    self.window, self.window_start = [], time.perf_counter()
                out_of_time = (self.cfg.max_seconds is not None
                               and time.perf_counter() - fit_start >= self.cfg.max_seconds)
                if self.step % self.cfg.eval_every == 0 or self.step == self.total_steps or out_of_time:
                    metrics = flat("val", self.evaluate("val")) if self.data.val is not None else {}
                    if metrics:
                        progress.eval(self.step, self.total_steps, metrics)
                    if log and metrics:
                        log.write(self.step, metrics)
                    done = self._track(metrics)
                    if metrics and self.best_step == self.step:
                        self.best_val = metrics
                    self.stopped_by = "early_stopping" if done else "max_seconds" if out_of_time else None
                    self.save()
                    if done or out_of_time:
                        break
                elif stop.requested and self.run_dir is not None and self.last_saved is not None:
                    self.save()  # the finished step; a fresh run with no checkpoint yet keeps nothing, so that
                    # an --overwrite'n run comes back whole, as after any failure before the first checkpoint
                if stop.requested:
                    raise TrainingInterrupted(self.stopped_message(stop.signum), stop.signum)
        finally:  # also on an error, so that its message starts on a line of its own, not after the bar
            if self.session_start is not None:
                self.seconds_before, self.session_start = self.train_seconds, None
            handlers.close()  # the signal handlers of before
            if own_progress:
                progress.close()

    @property
    def patience_ran_out(self) -> bool:
        """Early stopping has ended the run: as many evaluations without improvement as the patience allows."""
        patience = self.cfg.early_stopping.patience
        return patience is not None and self.bad_evals >= patience

    def claim_run_folder(self) -> None:
        """Hold run_dir (rank 0) for as long as this trainer lives: a second process training or resuming the
        same run is refused in one line, before it writes anything (``xformer.folder_lock.hold_folder``)."""
        if self.run_dir is not None and self.world.main and self.folder_lock is None:
            self.folder_lock = hold_folder(self.run_dir, lambda holder: (
                f"cannot write the run {self.run_dir}: {holder} is training or writing it; wait for it to end "
                f"(or stop it), then continue with xformer train --resume {self.run_dir}"))

    def stopped_message(self, signum: int) -> str:
        name = signal.Signals(signum).name
        if self.run_dir is None:  # training in memory (e.g. Forecaster.fit): nothing is saved at any step
            return f"{name} at step {self.step} of {self.total_steps}"
        if self.last_saved is None:
            return (f"{name} at step {self.step} of {self.total_steps}, before the first checkpoint: "
                    f"{self._nothing_kept()}")
        return (f"{name}: stopped after step {self.step} of {self.total_steps}, kept as {self.last_saved}; continue "
                f"with: xformer train --resume {self.run_dir}")

    def stopped_twice_message(self, signum: int) -> str:
        """A second Ctrl-C stops mid-step: what a resume continues from."""
        name = signal.Signals(signum).name
        where = f"{name} twice: stopped during step {self.step + 1} of {self.total_steps}"
        if self.run_dir is None or self.last_saved is None:
            return f"{where}{'' if self.run_dir is None else f', before the first checkpoint: {self._nothing_kept()}'}"
        return (f"{where}; the last checkpoint is {self.last_saved}; continue with: xformer train --resume "
                f"{self.run_dir}")

    def _nothing_kept(self) -> str:
        if self.replacing:  # OutputFolder.failed puts the old run back
            return f"nothing of the new run was kept and the old run in {self.run_dir} is as it was"
        return "nothing was kept"

    def _batches(self):
        """Micro-batches forever, epoch after epoch, from the current sampler position."""
        while True:
            self.sampler.set_epoch(self.epoch, start=self.seen_in_epoch // self.world.size)
            for batch in self.loader:
                self.seen_in_epoch += self.micro * self.world.size
                yield {k: v.to(self.world.device, non_blocking=True) if torch.is_tensor(v) else v
                       for k, v in dict_batch(batch, "training", self.n_classes).items()}
            self.epoch, self.seen_in_epoch = self.epoch + 1, 0

    def _step(self, batches) -> tuple[float, float]:
        self.engine.train()
        micro_batches = [] if self.sam is not None else None  # SAM's second pass reads the same ones
        totals = self._forward_backward(batches, micro_batches)
        total_loss, total_weight = all_sum(totals, self.world).tolist()
        loss = total_loss / total_weight
        if not math.isfinite(loss):
            self.optimizer.zero_grad(set_to_none=True)
            raise TrainingDiverged(diverged_message(loss, self.step + 1, self.last_saved, self.cfg, self.recipe))
        if self.sam is not None:
            with self.sam.perturbed():  # the gradient at w + e(w), over the same targets (same total_weight)
                self._forward_backward(iter(micro_batches), None)
        for p in self.model.parameters():
            if p.grad is not None:
                p.grad.mul_(self.world.size / total_weight)
        if self.cfg.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip)
        clear_stepped_untrained(self.model)  # a head no checkpoint gave (init_from) is trained from here on
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss, total_weight

    def _forward_backward(self, batches, kept: list | None) -> torch.Tensor:
        """Back-propagate w_i L_i for grad_accum micro-batches (appended to ``kept`` when given);
        returns (sum_i w_i L_i, sum_i w_i) on this rank."""
        totals = torch.zeros(2, device=self.world.device)
        for i in range(self.cfg.grad_accum):
            batch = next(batches)
            if kept is not None:
                kept.append(batch)
            with grad_sync(self.engine, i == self.cfg.grad_accum - 1):
                with self.autocast:
                    loss, weight = loss_of(self.engine(batch), batch)
                weight = torch.as_tensor(weight, device=self.world.device).float()
                weighted = loss.float() * weight
                if self.learns:
                    weighted.backward()
            totals += torch.stack([weighted.detach(), weight])
        return totals

    # ---- evaluation -----------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, split: str, max_batches: int | None = None) -> dict[str, float]:
        """Target-weighted mean loss and the data's own metrics (every rank evaluates the whole split,
        or its first ``max_batches`` / train.eval_batches batches)."""
        dataset = split_of(self.data, split)
        loader = DataLoader(dataset, self.cfg.eval_batch_size or self.micro, shuffle=False,
                            collate_fn=self.data.collate, num_workers=self.cfg.num_workers)
        # the average is an unwrapped copy: every rank evaluates it alone, as it evaluates the whole split
        engine, model = (self.ema.module, self.ema.module) if self.ema is not None else (self.engine, self.model)
        engine.eval()
        batches = itertools.islice(loader, max_batches or self.cfg.eval_batches)
        with self.autocast:
            return evaluate_batches(engine, model, self.data, split, batches, self.world.device)

    def check_early_stopping_metric(self) -> None:
        """Refuse, before the first step, an early-stopping metric the validation split does not measure:
        evaluate one batch for the metrics' names, leaving every random generator as it was."""
        if self.data.val is None or self.cfg.early_stopping.metric == "val_loss":
            return
        generators = rng_state()
        measured = flat("val", self.evaluate("val", max_batches=1))
        set_rng_state(generators)
        early_stopping_value(self.cfg.early_stopping.metric, measured)

    def _track(self, metrics: dict[str, float]) -> bool:
        """Update the best value of the early-stopping metric; True when patience has run out."""
        rule = self.cfg.early_stopping
        if not metrics:
            return False
        value = early_stopping_value(rule.metric, metrics)
        better = self.best is None or (value < self.best if rule.mode == "min" else value > self.best)
        self.bad_evals = 0 if better else self.bad_evals + 1
        if better:
            self.best, self.best_step = value, self.step
        return rule.patience is not None and self.bad_evals >= rule.patience

    # ---- checkpoints ----------------------------------------------------------------------------------
    def save(self) -> None:
        weights, optim = full_state(self.model, self.optimizer, self.sharded)  # collective under FSDP2
        ema = self.ema.module.state_dict() if self.ema is not None else None
        rngs = gather(rng_state(), self.world)
        if self.world.main and self.run_dir is not None:
            state = {"step": self.step, "epoch": self.epoch, "seen_in_epoch": self.seen_in_epoch,
                     "best": self.best, "best_step": self.best_step, "bad_evals": self.bad_evals,
                     "stopped_by": self.stopped_by, "world_size": self.world.size, "total_steps": self.total_steps,
                     "train_seconds": round(self.train_seconds, 3), "config": self.recipe,
                     "log_window": {"losses": list(self.window), "seconds": time.perf_counter() - self.window_start
                                    if self.window and self.window_start is not None else 0.0}}
            trainer = {"optimizer": optim, "scheduler": self.scheduler.state_dict(), "rng": rngs}
            self.last_saved = save_checkpoint(self.run_dir / "checkpoints", self.step, weights, trainer, state,
                                              self.aliases, self.cfg.keep_last, self.best_step == self.step, ema,
                                              self._prune_failed)
            if self.after_save is not None:
                self.after_save()
        barrier(self.world)

    def _prune_failed(self, error: OSError) -> None:
        """An old checkpoint could not be deleted: the new one is saved, so the run goes on; said once a run."""
        if not self.prune_warned:
            self.prune_warned = True
            print(f"xformer: warning: cannot delete an old checkpoint ({error}); training goes on, and old "
                  "checkpoints that cannot be deleted are left in place (this is said once)", file=sys.stderr)

    def resume(self, planned_steps: int | None = None) -> None:
        """Continue from the latest checkpoint of run_dir: weights (and their average), optimizer, schedule,
        RNG, data position. ``planned_steps``: the schedule length the run was saved with; when it differs
        from this trainer's ``total_steps`` the schedule is rebuilt for the new length (``rebuild_schedule``).
        The run folder is claimed first (a run another process is training is refused), and the temporaries
        that killed writes left in it and in checkpoints/ are removed."""
        self.claim_run_folder()
        if self.world.main:
            remove_stale_temporaries(self.run_dir)  # e.g. .metrics.json.tmpPID of a process killed mid-write
            remove_stale_temporaries(self.run_dir / "checkpoints")
        path = checkpoint_dir(self.run_dir / "checkpoints")
        state, weights, trainer = read_state(path), read_weights(path), read_trainer(path)
        load_full_state(self.model, self.optimizer, weights, trainer["optimizer"], self.sharded, load_weights)
        if self.ema is not None:
            load_weights(self.ema.module, read_weights(path, EMA_FILE))
        planned = state.get("total_steps", planned_steps)
        if planned is None or planned == self.total_steps:
            self.scheduler.load_state_dict(trainer["scheduler"])
        else:
            self.rebuild_schedule(state["step"])
        set_rng_state(trainer["rng"][self.world.rank % len(trainer["rng"])])
        self.step, self.epoch, self.seen_in_epoch = state["step"], state["epoch"], state["seen_in_epoch"]
        self.best, self.best_step, self.bad_evals = state["best"], state["best_step"], state["bad_evals"]
        self.stopped_by = state.get("stopped_by")
        self.seconds_before = float(state.get("train_seconds", 0.0))  # 0 for checkpoints that predate it
        window = state.get("log_window") or {}  # checkpoints that predate it: the window starts afresh
        self.window, self.window_seconds = [float(v) for v in window.get("losses", [])], float(window.get("seconds", 0))
        self.last_saved = path

    def rebuild_schedule(self, step: int) -> None:
        """The schedule of a run planned for ``total_steps`` from its start, as it stands after ``step`` steps:
        the learning rates a fresh run of this length has at that step (bit for bit: the same scheduler
        objects stepped as often)."""
        for group in self.optimizer.param_groups:  # where a fresh scheduler starts from
            group["lr"] = group["initial_lr"]
        self.scheduler = build_scheduler(self.optimizer, self.cfg, self.total_steps, self.steps_per_epoch)
        with warnings.catch_warnings():  # stepping a scheduler without an optimizer step is the point here
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(step):
                self.scheduler.step()
