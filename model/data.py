"""Batches of token windows read from memory-mapped shards (see model.shards)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from model.shards import read_header, read_tokens

Batch = tuple[torch.Tensor, torch.Tensor]


class TokenBatches:
    """Random (x, y) training batches of shape (batch_size, block_size), y being x shifted by one.

    Each row picks a shard with probability proportional to its token count, then a uniformly
    random window inside it. Batch ``index`` is a pure function of (seed, rank, index), so a
    resumed run sees exactly the batches it would have seen, and ranks of a distributed run
    draw different batches without coordinating.
    """

    def __init__(
        self,
        shard_paths: Sequence[str | Path],
        block_size: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
    ) -> None:
        if not shard_paths:
            raise ValueError("no training shards given")
        self.block_size = block_size
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        headers = {Path(p): read_header(Path(p)) for p in shard_paths}
        vocab_sizes = {h.vocab_size for h in headers.values()}
        if len(vocab_sizes) > 1:
            raise ValueError(f"shards disagree on vocabulary size: {sorted(vocab_sizes)}")
        self.vocab_size = vocab_sizes.pop()
        usable = [p for p, h in headers.items() if h.n_tokens > block_size]
        self.skipped = [p for p in headers if p not in usable]
        if not usable:
            sizes = ", ".join(f"{p} ({h.n_tokens} tokens)" for p, h in headers.items())
            raise ValueError(
                f"no shard holds the {block_size + 1} tokens one window needs: {sizes}"
            )
        self.paths = usable
        self._tokens = [read_tokens(p) for p in usable]
        counts = np.array([t.size for t in self._tokens], dtype=np.float64)
        self.n_tokens = int(counts.sum())
        self._weights = counts / counts.sum()

    def batch(self, index: int) -> Batch:
        """The index-th batch of this (seed, rank) stream."""
        rng = np.random.default_rng([self.seed, self.rank, index])
        shard_ids = rng.choice(len(self._tokens), size=self.batch_size, p=self._weights)
        rows = np.empty((self.batch_size, self.block_size + 1), dtype=np.int64)
        for row, shard_id in enumerate(shard_ids):
            tokens = self._tokens[shard_id]
            start = int(rng.integers(0, tokens.size - self.block_size))
            rows[row] = tokens[start : start + self.block_size + 1]
        data = torch.from_numpy(rows)
        return data[:, :-1].contiguous(), data[:, 1:].contiguous()

    def __iter__(self) -> Iterator[Batch]:
        index = 0
        while True:
            yield self.batch(index)
            index += 1


def _windows(shard_paths: Sequence[str | Path], block_size: int) -> Iterator[np.ndarray]:
    """(2, block_size) arrays of x over y, stepping by block_size, the last one padded."""
    for path in shard_paths:
        tokens = read_tokens(Path(path))
        n = tokens.size
        for start in range(0, n - 1, block_size):
            length = min(block_size, n - 1 - start)
            window = np.zeros((2, block_size), dtype=np.int64)
            window[1] = -1
            window[0, :length] = tokens[start : start + length]
            window[1, :length] = tokens[start + 1 : start + 1 + length]
            yield window


def iter_eval_windows(
    shard_paths: Sequence[str | Path],
    block_size: int,
    batch_size: int,
    max_windows: int | None = None,
) -> Iterator[Batch]:
    """Non-overlapping windows that predict every token of every shard once (but the first).

    Windows step by block_size through each shard. The last window of a shard is usually
    shorter: it is padded with x = 0 and y = -1, which the loss ignores, and since the model is
    causal the padding cannot change the scores of the real positions. With max_windows the
    walk stops early, for a cheaper, still deterministic estimate. The last batch may be smaller.
    """
    windows = itertools.islice(_windows(shard_paths, block_size), max_windows)
    while chunk := list(itertools.islice(windows, batch_size)):
        data = torch.from_numpy(np.stack(chunk))
        yield data[:, 0].contiguous(), data[:, 1].contiguous()
