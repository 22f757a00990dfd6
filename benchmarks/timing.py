"""The timing the benchmarks share: two callables alternated in one process, so that the machine's drift
(it is shared, and its speed moves by 2x over a day) falls on both alike."""
from __future__ import annotations

import time


def seconds(fn, sync=None) -> float:
    """Wall seconds of ``fn()``; ``sync`` (e.g. torch.cuda.synchronize) is called before the clock stops."""
    start = time.perf_counter()
    fn()
    if sync is not None:
        sync()
    return time.perf_counter() - start


def alternate(a, b, pairs: int, sync=None) -> tuple[list[float], list[float]]:
    """Seconds of ``a`` and of ``b`` over ``pairs`` pairs after one warm-up call each, A B then B A (the order
    flipped every pair, so that neither always runs on the cache the other left)."""
    a(), b()
    ta, tb = [], []
    for i in range(pairs):
        if i % 2:
            tb.append(seconds(b, sync)), ta.append(seconds(a, sync))
        else:
            ta.append(seconds(a, sync)), tb.append(seconds(b, sync))
    return ta, tb
