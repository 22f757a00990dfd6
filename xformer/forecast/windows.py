"""The training windows of a whole panel as one dataset whose batches are gathered at once.

``fit`` builds one ``WindowDataset`` / ``CovariateWindows`` per series (xformer/data/series.py,
covariates.py: they define each window). Reading them item by item and collating each batch costs
about 10 us a window, as much as a small model's own step on a panel of millions of windows, so
``PanelWindows`` holds the rows of every series in one tensor per part and answers ``__getitems__`` (the
indices of a batch, as torch's DataLoader asks) with the batch itself, gathered by indexing: the same
windows, in the same order (``ConcatDataset``'s), holding the same values to the bit. ``pass_batches`` is
its collate: a gathered batch passes through, a list of items (``__getitem__``'s) is collated as before.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from ..batch import FUTURE_COVARIATES as FUTURE
from ..batch import INPUTS, TARGETS
from ..batch import PAST_COVARIATES as PAST
from ..batch import STATIC_COVARIATES as STATIC
from ..data.series import WindowDataset


class _Rows:
    """One part (target, past or future covariates) of every series, end to end: ``values`` (rows, k) and, where
    a series has gaps carried forward (``carried_rows``' pair), ``last_observed`` and ``forward``; a series
    without gaps is observed at every row (``last_observed`` its own row), so no value of it is replaced."""

    def __init__(self, parts: list[tuple[torch.Tensor, tuple | None]]):
        self.values = torch.cat([values for values, _ in parts])
        self.carried = None
        if any(carried is not None for _, carried in parts):
            own_row = lambda v: torch.arange(len(v))[:, None].expand(v.shape).clone()  # noqa: E731
            self.carried = (torch.cat([own_row(v) if c is None else c[0] for v, c in parts]),
                            torch.cat([v if c is None else c[1] for v, c in parts]))

    def gather(self, first: torch.Tensor, start: torch.Tensor, length: int) -> torch.Tensor:
        """(B, length, k): rows [start, start + length) of each window's series (``first``: its first row here),
        the trailing gap at the window's last row carried forward, as ``carried_rows`` reads one window."""
        local = start[:, None] + torch.arange(length)  # rows counted in the series, as its carried pair counts them
        rows = first[:, None] + local
        values = self.values[rows]
        if self.carried is None:
            return values
        last_observed, forward = self.carried[0][rows[:, -1]], self.carried[1][rows]
        trailing = (local[:, :, None] > last_observed[:, None, :]) & ~forward.isnan()
        return torch.where(trailing, forward, values)


class PanelWindows(Dataset):
    """The windows of ``series`` (one ``WindowDataset`` of (T, 1) values or ``CovariateWindows`` per series, of one
    config, at least one), one
    after another as ``ConcatDataset(series)`` numbers them; ``__getitems__`` gathers a batch of them."""

    def __init__(self, series: list[Dataset]):
        self.input_len, self.horizon = series[0].input_len, series[0].horizon
        sizes = torch.tensor([len(s) for s in series], dtype=torch.long)
        self.window_ends = torch.cumsum(sizes, 0)
        self.window_starts = self.window_ends - sizes
        if isinstance(series[0], WindowDataset):
            self.parts, self.static = {INPUTS: _Rows([(s.values, s.carried) for s in series])}, None
        else:
            self.parts = {INPUTS: _Rows([(s.y, s.carried[0]) for s in series])}
            for key, column, part in ((PAST, 1, "past"), (FUTURE, 2, "future")):
                if getattr(series[0], part).shape[1]:
                    self.parts[key] = _Rows([(getattr(s, part), s.carried[column]) for s in series])
            self.static = None if series[0].static is None else torch.stack([s.static for s in series])
        lengths = torch.tensor([len(s.values if isinstance(s, WindowDataset) else s.y) for s in series])
        self.first_rows = torch.cumsum(lengths, 0) - lengths

    def __len__(self) -> int:
        return int(self.window_ends[-1])

    def __getitem__(self, i: int) -> dict:
        return {key: values[0] for key, values in self.__getitems__([i]).items()}

    def __getitems__(self, indices: list[int]) -> dict:
        """The batch of windows ``indices``: what default_collate makes of their items, gathered at once."""
        index = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        if len(index) and not (0 <= int(index.min()) and int(index.max()) < len(self)):
            raise IndexError(indices)
        which = torch.searchsorted(self.window_ends, index, right=True)
        first, start = self.first_rows[which], index - self.window_starts[which]
        L, H = self.input_len, self.horizon
        target = self.parts[INPUTS]
        batch = {INPUTS: target.gather(first, start, L), TARGETS: target.values[(first + start + L)[:, None]
                                                                               + torch.arange(H)]}
        if PAST in self.parts:
            batch[PAST] = self.parts[PAST].gather(first, start, L)
        if FUTURE in self.parts:
            batch[FUTURE] = self.parts[FUTURE].gather(first, start, L + H)
        if self.static is not None:
            batch[STATIC] = self.static[which]
        return batch


def pass_batches(batch):
    """The DataLoader's collate: a batch ``PanelWindows`` gathered passes through, a list of items is collated."""
    return batch if isinstance(batch, Mapping) else default_collate(batch)


__all__ = ["PanelWindows", "pass_batches"]
