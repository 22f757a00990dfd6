"""What the line of a run whose loss became NaN or infinite advises (``diverged_message``).

At step 1 the loss comes from the weights the run started with, before any update: no learning rate, warmup or
clipping can be its cause, so the line points to the model's and data's values instead. Later the usual remedies
(a lower learning rate, a longer warmup, clipping where it is off) come after the run's own settings that lie far
outside their usual range (``unusual_settings``: e.g. a SAM radius of 1e308), named with their values.
"""
from __future__ import annotations

import math

from .config import TrainConfig

# (key in the recipe, its usual range in words, whether a value is far outside it)
_USUAL = (
    ("model.core.layer_scale", "1e-6 to 0.1", lambda v: not math.isfinite(v) or abs(v) > 1),
    ("model.head.args.weight", "0.1 to 1 (DRLoc's lambda)", lambda v: not math.isfinite(v) or v > 10),
    ("data.args.mixup", "0.2 to 1", lambda v: not math.isfinite(v) or v > 10),
    ("data.args.cutmix", "0.2 to 1", lambda v: not math.isfinite(v) or v > 10),
)


def _lookup(recipe: dict, key: str):
    node = recipe
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def unusual_settings(cfg: TrainConfig, recipe: dict | None) -> list[str]:
    """``key=value (usual: ...)`` for each of the run's settings that lies far outside its usual range."""
    found = []
    rho, limit = cfg.sam.rho, (5.0 if cfg.sam.adaptive else 0.5)
    if rho > limit:
        found.append(f"train.sam.rho={rho:g} (usual: {'0.5 to 2 with adaptive' if cfg.sam.adaptive else '0.05'})")
    if cfg.lr > 0.1:
        found.append(f"train.lr={cfg.lr:g} (usual: 1e-4 to 1e-2)")
    for key, usual, far in _USUAL:
        value = _lookup(recipe or {}, key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and far(float(value)):
            found.append(f"{key}={value:g} (usual: {usual})")
    return found


def diverged_message(loss: float, step: int, last_saved, cfg: TrainConfig, recipe: dict | None) -> str:
    """The one line of a run stopped at ``step`` (1-based) because its loss is ``loss`` (NaN or infinite)."""
    kept = f"the last good checkpoint is {last_saved}" if last_saved else "no checkpoint was saved"
    suspects = unusual_settings(cfg, recipe)
    named = f"change the run's unusual settings: {', '.join(suspects)}" if suspects else ""
    if step == 1:  # the starting weights: no update has happened yet
        fix = named or "look for model or data values far out of their usual range in the recipe"
        return (f"loss is {loss} at step 1, before any update (no learning rate or clipping setting can cause it); "
                f"training stopped and {kept}; {fix}")
    usual = [*([] if any(s.startswith("train.lr=") for s in suspects) else ["lower train.lr"]),
             "raise train.warmup_steps", *(["set train.clip"] if cfg.clip is None else [])]
    usual = f"{', '.join(usual[:-1])} or {usual[-1]}" if len(usual) > 1 else usual[0]
    return f"loss is {loss} at step {step}; training stopped and {kept}; {named + ', or ' if named else ''}{usual}"


__all__ = ["diverged_message", "unusual_settings"]
