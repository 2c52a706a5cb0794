from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from model.data import TokenBatches, iter_eval_windows
from model.shards import read_tokens

from .conftest import MakeShard

VOCAB = 100_000  # above 65,536, so shards hold uint32 and ids can simply count up


def counting_shard(make_shard: MakeShard, name: str, start: int, n: int, docs: int = 3):
    """A shard whose tokens are start, start + 1, ..., split into a few documents."""
    return make_shard(name, np.array_split(np.arange(start, start + n), docs), VOCAB)


def test_batches_are_shifted_windows_of_the_shard(make_shard: MakeShard) -> None:
    path = counting_shard(make_shard, "a.bin", 0, 5_000)
    batches = TokenBatches([path], block_size=64, batch_size=6, seed=1)
    x, y = batches.batch(0)
    assert x.shape == y.shape == (6, 64)
    assert x.dtype == y.dtype == torch.int64
    assert x.is_contiguous() and y.is_contiguous()
    assert torch.equal(y, x + 1)
    assert torch.equal(x[:, 1:] - x[:, :1], torch.arange(1, 64).expand(6, -1))
    assert int(y.max()) < 5_000
    assert batches.vocab_size == VOCAB and batches.n_tokens == 5_000


def test_batches_are_a_pure_function_of_seed_rank_and_index(make_shard: MakeShard) -> None:
    path = counting_shard(make_shard, "a.bin", 0, 50_000)

    def batch(seed: int, rank: int, index: int) -> torch.Tensor:
        return TokenBatches([path], 32, 4, seed=seed, rank=rank).batch(index)[0]

    assert torch.equal(batch(0, 0, 7), batch(0, 0, 7))
    stream = TokenBatches([path], 32, 4, seed=0)
    first_three = [x for x, _ in itertools.islice(stream, 3)]
    assert torch.equal(first_three[2], batch(0, 0, 2))
    assert not torch.equal(batch(0, 0, 7), batch(1, 0, 7))
    assert not torch.equal(batch(0, 0, 7), batch(0, 1, 7))
    assert not torch.equal(batch(0, 0, 7), batch(0, 0, 8))


def test_shards_are_sampled_in_proportion_to_their_tokens(make_shard: MakeShard) -> None:
    small = counting_shard(make_shard, "small.bin", 0, 10_000)
    large = counting_shard(make_shard, "large.bin", 10_000, 30_000)
    batches = TokenBatches([small, large], block_size=16, batch_size=50, seed=3)
    rows = torch.cat([batches.batch(i)[0] for i in range(80)])
    share_large = (rows[:, 0] >= 10_000).float().mean().item()
    assert share_large == pytest.approx(0.75, abs=0.03)
    # Windows never straddle two shards.
    assert torch.equal((rows >= 10_000).all(dim=1), (rows >= 10_000).any(dim=1))


def test_shards_too_short_for_a_window_are_skipped(make_shard: MakeShard) -> None:
    short = counting_shard(make_shard, "short.bin", 0, 64)  # one window needs 65 tokens
    long = counting_shard(make_shard, "long.bin", 1_000, 200)
    batches = TokenBatches([short, long], block_size=64, batch_size=32, seed=0)
    assert batches.skipped == [short]
    assert int(batches.batch(0)[0].min()) >= 1_000


def test_no_long_enough_shard_is_an_error_naming_the_files(make_shard: MakeShard) -> None:
    short = counting_shard(make_shard, "short.bin", 0, 30)
    empty = make_shard("empty.bin", [], VOCAB)
    with pytest.raises(ValueError, match=r"short\.bin \(30 tokens\).*empty\.bin \(0 tokens\)"):
        TokenBatches([short, empty], block_size=64, batch_size=2)
    with pytest.raises(ValueError, match="no training shards"):
        TokenBatches([], block_size=64, batch_size=2)


def test_shards_with_different_vocabularies_are_refused(make_shard: MakeShard) -> None:
    a = make_shard("a.bin", [np.arange(100)], 1_000)
    b = make_shard("b.bin", [np.arange(100)], 2_000)
    with pytest.raises(ValueError, match="vocabulary"):
        TokenBatches([a, b], block_size=8, batch_size=2)


def test_uint16_shards_read_as_int64(make_shard: MakeShard) -> None:
    path = make_shard("small_vocab.bin", [np.arange(60_000, 60_500)], 65_536)
    x, y = TokenBatches([path], 16, 2).batch(0)
    assert x.dtype == torch.int64 and int(x.min()) >= 60_000
    assert torch.equal(y, x + 1)


def test_eval_windows_predict_every_token_once(make_shard: MakeShard) -> None:
    paths = [
        counting_shard(make_shard, "v0.bin", 0, 1_000),
        counting_shard(make_shard, "v1.bin", 5_000, 64),  # exactly one full window
        counting_shard(make_shard, "v2.bin", 9_000, 10),
    ]
    predicted = []
    n_windows = 0
    for x, y in iter_eval_windows(paths, block_size=64, batch_size=5):
        assert x.shape == y.shape and x.shape[1] == 64 and x.shape[0] <= 5
        valid = y != -1
        assert torch.equal(y[valid], x[valid] + 1)
        # Padding only at the end of a window.
        assert torch.equal(valid, valid.cummin(dim=1).values)
        predicted.append(y[valid])
        n_windows += x.shape[0]
    expected = np.concatenate([np.asarray(read_tokens(p))[1:] for p in paths])
    assert torch.equal(torch.cat(predicted), torch.from_numpy(expected.astype(np.int64)))
    assert n_windows == 16 + 1 + 1  # ceil(999 / 64) + ceil(63 / 64) + ceil(9 / 64)


def test_eval_windows_stop_at_max_windows(make_shard: MakeShard) -> None:
    path = counting_shard(make_shard, "v.bin", 0, 10_000)
    batches = list(iter_eval_windows([path], block_size=32, batch_size=4, max_windows=10))
    assert [x.shape[0] for x, _ in batches] == [4, 4, 2]
    assert int(batches[-1][0][-1, 0]) == 9 * 32
    assert (batches[-1][1] != -1).all()
