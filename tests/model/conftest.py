"""Fixtures for the model tests: shards written with model.shards, a byte-level BPE tokenizer."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from model.shards import write_shard

EOS = "<|endoftext|>"
MakeShard = Callable[..., Path]


@pytest.fixture(scope="session", autouse=True)
def single_thread_torch() -> Iterator[None]:
    """Run torch on one thread: the test models are too small to gain from more, and on a
    busy two-core machine OpenMP threads spin-waiting for each other make steps many times
    slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def make_shard(tmp_path: Path) -> MakeShard:
    """make_shard(name, documents, vocab_size) writes tmp_path/name and returns its path."""

    def make(name: str, documents: Sequence[np.ndarray], vocab_size: int) -> Path:
        path = tmp_path / name
        write_shard(path, documents, vocab_size)
        return path

    return make


@pytest.fixture(scope="session")
def alice_text(corpus_dir: Path) -> str:
    return (corpus_dir / "gutenberg" / "texts" / "pg11-0.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def byte_tokenizer(alice_text: str) -> Tokenizer:
    """A byte-level BPE with a 512-token vocabulary trained on Alice in Wonderland."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(alice_text.split("\n\n"), trainer)
    return tokenizer


@pytest.fixture(scope="session")
def alice_shards(
    tmp_path_factory: pytest.TempPathFactory, alice_text: str, byte_tokenizer: Tokenizer
) -> tuple[Path, Path]:
    """(train, validation) shards of Alice's paragraphs, each ending with the EOS token."""
    eos = byte_tokenizer.token_to_id(EOS)
    paragraphs = [p for p in alice_text.split("\n\n") if p.strip()]
    documents = [np.array([*e.ids, eos]) for e in byte_tokenizer.encode_batch(paragraphs)]
    split = len(documents) * 9 // 10
    directory = tmp_path_factory.mktemp("alice_shards")
    vocab_size = byte_tokenizer.get_vocab_size()
    train, val = directory / "train_000.bin", directory / "val_000.bin"
    write_shard(train, documents[:split], vocab_size)
    write_shard(val, documents[split:], vocab_size)
    return train, val
