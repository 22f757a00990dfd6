"""A long-horizon ETTh1 run scored at a shorter horizon: its forecast's first H steps, on the H-horizon data's
validation and test windows (every window; and the reference's windows, the first floor(n / 128) * 128).

    python benchmarks/etth1_truncated_horizon.py 336 RUN_720 [RUN_720 ...]    # several runs: their mean forecast

Asks whether training on the longer target (720 steps) regularises the first 336, where the H=336 recipe's
validation loss turns up after epoch 7-9 (benchmarks/README.md, "the long horizons").
"""
from __future__ import annotations

import argparse
import json

import torch
from torch.utils.data import DataLoader

from xformer.batch import TARGETS
from xformer.data.registry import build_data
from xformer.train.run import load_run_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("horizon", type=int, help="the shorter horizon to score, e.g. 336")
    parser.add_argument("runs", nargs="+", help="run folders of one longer horizon and one lookback")
    args = parser.parse_args()
    torch.set_num_threads(1)
    loaded = [load_run_model(run) for run in args.runs]
    config, models = loaded[0][0], [model for _, model in loaded]
    data = build_data(config.data.name, {**config.data.args, "horizon": args.horizon})
    scores = {}
    with torch.no_grad():
        for split in ("val", "test"):
            errors = []
            for batch in DataLoader(getattr(data, split), batch_size=128, shuffle=False, collate_fn=data.collate):
                inputs = {key: value for key, value in batch.items() if key != TARGETS}
                y_hat = torch.stack([m(inputs)["prediction"].double()[:, :args.horizon] for m in models]).mean(0)
                errors.append(((y_hat - batch[TARGETS].double()) ** 2).mean(dim=(1, 2)))
            errors = torch.cat(errors)
            scores[f"{split}_mse"] = round(errors.mean().item(), 4)
            if split == "test":
                scores["test_mse_reference_windows"] = round(errors[:len(errors) // 128 * 128].mean().item(), 4)
    print(json.dumps({"runs": args.runs, "horizon": args.horizon, **scores}))


if __name__ == "__main__":
    main()
