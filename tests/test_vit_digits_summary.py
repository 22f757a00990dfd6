"""benchmarks/vit_digits.py's summary: the mean over seeds is that of the test images, not of rounded accuracies."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # vit_digits.py imports run_folders beside it
spec = importlib.util.spec_from_file_location("vit_digits", ROOT / "benchmarks" / "vit_digits.py")
vit_digits = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vit_digits)


def test_the_mean_and_std_over_seeds_count_the_test_images_not_the_rounded_accuracies():
    # the CCT of 2026-11-29: 10, 2 and 5 of 360 wrong; 1063 / 1080 right = 0.98426, which the mean of the
    # four-digit accuracies (0.9722, 0.9944, 0.9861) put at 0.9842
    runs = [{"test_accuracy": round(1 - e / 360, 4), "test_errors": e, "val_accuracy": 1.0, "train_seconds": 1.0}
            for e in (10, 2, 5)]
    result = vit_digits.summary(vit_digits.RECIPE, runs)
    assert result["test_accuracy_mean"] == 0.9843
    assert result["test_accuracy_std"] == 0.0112
    assert (result["test_accuracy_min"], result["test_accuracy_max"]) == (0.9722, 0.9944)
