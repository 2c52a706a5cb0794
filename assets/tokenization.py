"""Byte-level BPE tokenizer training and token shards.

Tokenizer: trained with the ``tokenizers`` library on a deterministic sample of the corpus.
Each source gets a share of ``sample_bytes`` proportional to its weight; a source with less text
than its share gives the rest to the others in proportion to their weights. Inside a source,
documents are taken in the order of a seeded hash of their id until the share is used; the
document that crosses it contributes its leading part. The special tokens come first, so
``<|endoftext|>`` is id 0 and ``<|pad|>`` id 1.

Shards: each document goes to ``val`` when a seeded hash of its id, read as a number in [0, 1),
is below ``val_fraction``, else to ``train``. A document's split therefore never changes when
the corpus is re-run or grows. With two documents or more, each split gets at least one: when
no hash falls below the fraction the document with the smallest hash goes to ``val``, and when
all do the one with the largest goes to ``train``. Documents are encoded in batches, followed
by ``<|endoftext|>``, and written in input order (input files in sorted path order) with
:func:`model.shards.write_shard` as ``train_00000.bin``, ``train_00001.bin``, ... and
``val_00000.bin``, .... A shard is closed before the document that would take it past
``max_tokens_per_shard`` (a longer document gets a shard of its own); documents are never split
and a split without documents has no shard.

Text that contains a special token's spelling (a web page quoting ``<|endoftext|>``) is encoded
as ordinary text: the tokenizer's ``encode_special_tokens`` flag is set on load. That flag is not
saved in ``tokenizer.json``, so every reader of the shards must set it too.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from assets.schema import DOCUMENT_SCHEMA
from model.shards import (
    ShardFormatError,
    read_document_offsets,
    read_header,
    read_tokens,
    token_dtype,
    write_shard,
)

END_OF_TEXT = "<|endoftext|>"
PAD = "<|pad|>"
TOKENIZER_FILE = "tokenizer.json"
SPLITS = ("train", "val")


def _unit_hash(seed: int, doc_id: str) -> float:
    """A seeded hash of a document id as a number in [0, 1)."""
    digest = hashlib.blake2b(f"{seed}\0{doc_id}".encode(), digest_size=8).digest()
    # 53 bits: every such integer over 2**53 is an exact float below 1.
    return (int.from_bytes(digest, "big") >> 11) / 2**53


def _iter_batches(
    files: list[Path], columns: list[str], batch_size: int, with_bytes: bool = False
) -> Iterator[dict[str, list]]:
    """Column lists of record batches, files in sorted path order.

    ``with_bytes`` adds ``bytes``, each text's UTF-8 length (reading ``text``).
    """
    read = [*columns, "text"] if with_bytes and "text" not in columns else columns
    for path in sorted((Path(p) for p in files), key=str):
        parquet = pq.ParquetFile(path)
        missing = set(DOCUMENT_SCHEMA.names) - set(parquet.schema_arrow.names)
        if missing:
            raise ValueError(f"{path}: not a document table, missing columns {sorted(missing)}")
        for batch in parquet.iter_batches(batch_size=batch_size, columns=read):
            data = {name: batch.column(name).to_pylist() for name in columns}
            if with_bytes:
                data["bytes"] = pc.binary_length(batch.column("text")).to_pylist()
            yield data


# Tokenizer ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenizerSettings:
    """Byte-level BPE training parameters.

    ``source_weights`` maps a source to its relative share of the sample; a source not named
    weighs 1.0 and a weight of 0 leaves the source out.
    """

    vocab_size: int = 32_768
    min_frequency: int = 2
    special_tokens: tuple[str, ...] = (END_OF_TEXT, PAD)
    sample_bytes: int = 1 << 30
    source_weights: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.special_tokens[:1] != (END_OF_TEXT,):
            raise ValueError(f"the first special token must be {END_OF_TEXT} (id 0)")
        smallest = 256 + len(self.special_tokens)
        if self.vocab_size < smallest:
            raise ValueError(f"vocab_size {self.vocab_size} is below the {smallest} base tokens")
        if any(weight < 0 for weight in self.source_weights.values()):
            raise ValueError("source weights must not be negative")

    def weight(self, source: str) -> float:
        return self.source_weights.get(source, 1.0)


@dataclass
class TokenizerStats:
    """``sources`` maps a source to ``available_documents``, ``available_bytes`` (UTF-8),
    ``sampled_documents`` and ``sampled_bytes``; ``special_tokens`` maps a token to its id."""

    vocab_size: int
    requested_vocab_size: int
    special_tokens: dict[str, int]
    sampled_documents: int
    sampled_bytes: int
    sources: dict[str, dict[str, int]]

    def to_counts(self) -> dict[str, Any]:
        """JSON-ready form for a manifest."""
        return asdict(self)


def _share_budget(totals: dict[str, int], weights: dict[str, float], budget: int) -> dict[str, int]:
    """Split ``budget`` bytes by weight, capped at each source's total, re-sharing the excess."""
    shares = {source: 0 for source in totals}
    open_sources = {s for s in totals if weights[s] > 0 and totals[s] > 0}
    remaining = budget
    while open_sources and remaining > 0:
        weight_sum = sum(weights[s] for s in open_sources)
        offers = {s: int(remaining * weights[s] / weight_sum) for s in sorted(open_sources)}
        filled = {s for s in open_sources if totals[s] - shares[s] <= offers[s]}
        if not filled:
            for source, offer in offers.items():
                shares[source] += offer
            break
        for source in filled:
            remaining -= totals[source] - shares[source]
            shares[source] = totals[source]
        open_sources -= filled
    return shares


def _plan_sample(
    document_files: list[Path], settings: TokenizerSettings
) -> tuple[dict[int, int], dict[str, dict[str, int]]]:
    """Which documents (by position) to sample and how many of their bytes.

    Returns ``{position: byte limit}`` and the per-source counts for :class:`TokenizerStats`.
    """
    candidates: dict[str, list[tuple[float, int, int]]] = {}
    position = 0
    for data in _iter_batches(
        document_files, ["id", "source"], settings.batch_size, with_bytes=True
    ):
        for doc_id, source, size in zip(data["id"], data["source"], data["bytes"], strict=True):
            candidates.setdefault(source, []).append(
                (_unit_hash(settings.seed, doc_id), position, size)
            )
            position += 1
    totals = {source: sum(size for *_, size in docs) for source, docs in candidates.items()}
    weights = {source: settings.weight(source) for source in candidates}
    shares = _share_budget(totals, weights, settings.sample_bytes)

    plan: dict[int, int] = {}
    sources: dict[str, dict[str, int]] = {}
    for source in sorted(candidates):
        left = shares[source]
        taken = taken_bytes = 0
        for _, pos, size in sorted(candidates[source]):
            if left <= 0:
                break
            plan[pos] = min(size, left)
            taken += 1
            taken_bytes += plan[pos]
            left -= plan[pos]
        sources[source] = {
            "available_documents": len(candidates[source]),
            "available_bytes": totals[source],
            "sampled_documents": taken,
            "sampled_bytes": taken_bytes,
        }
    return plan, sources


def _sample_texts(
    document_files: list[Path], plan: dict[int, int], batch_size: int
) -> Iterator[str]:
    position = 0
    for data in _iter_batches(document_files, ["text"], batch_size):
        for text in data["text"]:
            limit = plan.get(position)
            position += 1
            if limit is None:
                continue
            raw = text.encode("utf-8")
            # A cut inside a multi-byte character drops that character's partial bytes.
            yield text if limit >= len(raw) else raw[:limit].decode("utf-8", errors="ignore")


def train_tokenizer(
    document_files: list[Path], out_dir: Path, settings: TokenizerSettings | None = None
) -> TokenizerStats:
    """Train a byte-level BPE tokenizer on a sample of the documents; save ``tokenizer.json``.

    The documents are read twice in batches (sizes, then the sampled texts), never all at once.
    """
    settings = settings or TokenizerSettings()
    plan, sources = _plan_sample(document_files, settings)

    tokenizer = Tokenizer(models.BPE())
    # Byte-level pre-tokenization maps every byte to a printable symbol, so any text encodes
    # without an unknown token; no prefix space keeps decode(encode(text)) == text.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=settings.vocab_size,
        min_frequency=settings.min_frequency,
        special_tokens=list(settings.special_tokens),
        # All 256 byte symbols, even those absent from the sample.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(
        _sample_texts(document_files, plan, settings.batch_size), trainer, length=len(plan)
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out_dir / TOKENIZER_FILE))
    return TokenizerStats(
        vocab_size=tokenizer.get_vocab_size(),
        requested_vocab_size=settings.vocab_size,
        special_tokens={token: tokenizer.token_to_id(token) for token in settings.special_tokens},
        sampled_documents=len(plan),
        sampled_bytes=sum(plan.values()),
        sources=sources,
    )


def load_tokenizer(tokenizer_path: Path) -> Tokenizer:
    """Load ``tokenizer.json`` with special-token spellings in text encoded as plain text."""
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.encode_special_tokens = True
    return tokenizer


# Shards ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardSettings:
    """Split and shard parameters; ``batch_size`` documents go to each ``encode_batch`` call,
    which encodes them in parallel (Rust threads)."""

    val_fraction: float = 0.05
    seed: int = 0
    max_tokens_per_shard: int = 100_000_000
    batch_size: int = 256

    def __post_init__(self) -> None:
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction {self.val_fraction} is not in [0, 1)")
        if self.max_tokens_per_shard < 1:
            raise ValueError("max_tokens_per_shard must be positive")


def assign_splits(doc_ids: list[str], settings: ShardSettings) -> list[str]:
    """``"train"`` or ``"val"`` for each id, by the rule in the module docstring."""
    keys = [_unit_hash(settings.seed, doc_id) for doc_id in doc_ids]
    splits = ["val" if key < settings.val_fraction else "train" for key in keys]
    if len(doc_ids) >= 2:
        if "val" not in splits:
            splits[min(range(len(keys)), key=keys.__getitem__)] = "val"
        elif "train" not in splits:
            splits[max(range(len(keys)), key=keys.__getitem__)] = "train"
    return splits


@dataclass
class ShardStats:
    """What :func:`write_token_shards` wrote.

    * ``splits``: ``{"train"|"val": {"documents", "tokens"}}``; tokens include one
      end-of-document token per document, as in the shard headers.
    * ``per_source``: ``{source: {"train_documents", "train_tokens", "val_documents",
      "val_tokens", "bytes", "bytes_per_token"}}``; ``bytes_per_token`` is UTF-8 bytes over
      tokens without the end-of-document tokens.
    * ``document_length_histogram``: documents per length bucket, keyed by the bucket's upper
      bound (a power of two; lengths in tokens with the end-of-document token).
    * ``shards``: ``[{"file", "split", "documents", "tokens"}]`` in write order.
    * ``samples``: ``[{"file", "document", "id", "text_sha256"}]``, the first and last document
      of each shard, for :func:`verify_shards` to decode.
    """

    vocab_size: int
    eot_id: int
    dtype: str
    splits: dict[str, dict[str, int]]
    per_source: dict[str, dict[str, float]]
    document_length_histogram: dict[int, int]
    shards: list[dict[str, Any]]
    samples: list[dict[str, Any]]

    def to_counts(self) -> dict[str, Any]:
        """JSON-ready form for a manifest, with flat totals for display; what
        :func:`verify_shards` expects."""
        data = asdict(self)
        data["document_length_histogram"] = {
            str(bound): count for bound, count in sorted(self.document_length_histogram.items())
        }
        for split, counts in self.splits.items():
            data[f"{split}_documents"] = counts["documents"]
            data[f"{split}_tokens"] = counts["tokens"]
        data["tokens_per_source"] = {
            source: int(counts["train_tokens"] + counts["val_tokens"])
            for source, counts in self.per_source.items()
        }
        data["bytes_per_token"] = {
            source: round(counts["bytes_per_token"], 4)
            for source, counts in self.per_source.items()
        }
        return data


class _SplitWriter:
    """Buffers one split's documents and writes a shard whenever the next would overflow.

    Keeps the token arrays of the open shard and, for the samples, only the first document's
    text hash and a reference to the latest document's text.
    """

    def __init__(self, split: str, out_dir: Path, vocab_size: int, settings: ShardSettings):
        self.split = split
        self.out_dir = out_dir
        self.vocab_size = vocab_size
        self.limit = settings.max_tokens_per_shard
        self.dtype = token_dtype(vocab_size)
        self.buffer: list[np.ndarray] = []
        self.buffered_tokens = 0
        self.first: dict[str, Any] = {}
        self.last: tuple[str, str] = ("", "")
        self.shards: list[dict[str, Any]] = []
        self.samples: list[dict[str, Any]] = []

    def add(self, tokens: np.ndarray, doc_id: str, text: str) -> None:
        if self.buffer and self.buffered_tokens + tokens.size > self.limit:
            self.flush()
        if not self.buffer:
            self.first = _sample(0, doc_id, text)
        self.last = (doc_id, text)
        self.buffer.append(tokens.astype(self.dtype))
        self.buffered_tokens += tokens.size

    def flush(self) -> None:
        if not self.buffer:
            return
        name = f"{self.split}_{len(self.shards):05d}.bin"
        header = write_shard(self.out_dir / name, self.buffer, self.vocab_size)
        self.shards.append(
            {
                "file": name,
                "split": self.split,
                "documents": header.n_documents,
                "tokens": header.n_tokens,
            }
        )
        samples = [self.first]
        if len(self.buffer) > 1:
            samples.append(_sample(len(self.buffer) - 1, *self.last))
        self.samples += [{"file": name, **sample} for sample in samples]
        self.buffer = []
        self.buffered_tokens = 0


def _sample(index: int, doc_id: str, text: str) -> dict[str, Any]:
    return {
        "document": index,
        "id": doc_id,
        "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
    }


def write_token_shards(
    document_files: list[Path],
    tokenizer_path: Path,
    out_dir: Path,
    settings: ShardSettings | None = None,
) -> ShardStats:
    """Encode every document and write train and validation shards (rules in the module doc)."""
    settings = settings or ShardSettings()
    tokenizer = load_tokenizer(tokenizer_path)
    eot_id = tokenizer.token_to_id(END_OF_TEXT)
    if eot_id is None:
        raise ValueError(f"{tokenizer_path}: no {END_OF_TEXT} token")
    vocab_size = tokenizer.get_vocab_size()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    doc_ids = [
        doc_id
        for data in _iter_batches(document_files, ["id"], settings.batch_size)
        for doc_id in data["id"]
    ]
    splits = assign_splits(doc_ids, settings)
    writers = {split: _SplitWriter(split, out_dir, vocab_size, settings) for split in SPLITS}
    per_source: dict[str, Counter[str]] = {}
    histogram: Counter[int] = Counter()
    eot = np.array([eot_id], dtype=np.int64)
    position = 0
    columns = ["id", "text", "source"]
    for data in _iter_batches(document_files, columns, settings.batch_size, with_bytes=True):
        encodings = tokenizer.encode_batch(data["text"], add_special_tokens=False)
        for doc_id, text, source, size, encoding in zip(
            data["id"], data["text"], data["source"], data["bytes"], encodings, strict=True
        ):
            split = splits[position]
            position += 1
            tokens = np.concatenate([np.asarray(encoding.ids, dtype=np.int64), eot])
            writers[split].add(tokens, doc_id, text)
            counts = per_source.setdefault(source, Counter())
            counts[f"{split}_documents"] += 1
            counts[f"{split}_tokens"] += tokens.size
            counts["bytes"] += size
            histogram[1 << max(0, int(tokens.size - 1).bit_length())] += 1
    for writer in writers.values():
        writer.flush()

    shards = [shard for split in SPLITS for shard in writers[split].shards]
    return ShardStats(
        vocab_size=vocab_size,
        eot_id=eot_id,
        dtype=token_dtype(vocab_size).name,
        splits={
            split: {
                "documents": sum(s["documents"] for s in writers[split].shards),
                "tokens": sum(s["tokens"] for s in writers[split].shards),
            }
            for split in SPLITS
        },
        per_source={
            source: _source_summary(counts) for source, counts in sorted(per_source.items())
        },
        document_length_histogram=dict(sorted(histogram.items())),
        shards=shards,
        samples=[sample for split in SPLITS for sample in writers[split].samples],
    )


def _source_summary(counts: Counter[str]) -> dict[str, float]:
    summary: dict[str, float] = {
        key: counts[key]
        for key in ("train_documents", "train_tokens", "val_documents", "val_tokens", "bytes")
    }
    text_tokens = sum(counts[f"{s}_tokens"] - counts[f"{s}_documents"] for s in SPLITS)
    summary["bytes_per_token"] = counts["bytes"] / text_tokens if text_tokens else 0.0
    return summary


def verify_shards(out_dir: Path, tokenizer_path: Path, expected: dict[str, Any]) -> list[str]:
    """Problems found in a shard directory, compared with ``ShardStats.to_counts()``.

    Checks each listed shard's header against its file size and the expected counts, its index,
    that documents end (and only end) with the end-of-document token, that no id is outside the
    vocabulary, that no unlisted shard lies beside them, that split totals add up, and that the
    sampled documents decode back to their text. An empty list means all is well.
    """
    out_dir = Path(out_dir)
    tokenizer = load_tokenizer(tokenizer_path)
    eot_id = tokenizer.token_to_id(END_OF_TEXT)
    vocab_size = tokenizer.get_vocab_size()
    problems: list[str] = []
    listed = {shard["file"] for shard in expected.get("shards", [])}
    unlisted = sorted(p.name for p in out_dir.glob("*.bin") if p.name not in listed)
    problems += [f"{name}: shard not listed in the stats" for name in unlisted]

    healthy: set[str] = set()
    totals: Counter[str] = Counter()
    for shard in expected.get("shards", []):
        name = shard["file"]
        totals[f"{shard['split']}_tokens"] += shard["tokens"]
        totals[f"{shard['split']}_documents"] += shard["documents"]
        found = _check_shard(out_dir / name, shard, eot_id, vocab_size)
        problems += [f"{name}: {problem}" for problem in found]
        if not found:
            healthy.add(name)
    for split, counts in expected.get("splits", {}).items():
        for key in ("tokens", "documents"):
            listed_total = totals[f"{split}_{key}"]
            if counts[key] != listed_total:
                problems.append(
                    f"{split}: stats say {counts[key]} {key}, its shards add up to {listed_total}"
                )

    for sample in expected.get("samples", []):
        if sample["file"] not in healthy:
            continue
        path = out_dir / sample["file"]
        offsets = read_document_offsets(path)
        index = sample["document"]
        if not 0 <= index < offsets.size - 1:
            problems.append(f"{sample['file']}: sampled document {index} is not in the shard")
            continue
        ids = read_tokens(path)[int(offsets[index]) : int(offsets[index + 1]) - 1]
        text = tokenizer.decode(ids.tolist(), skip_special_tokens=False)
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != sample["text_sha256"]:
            problems.append(
                f"{sample['file']}: document {index} ({sample['id']}) does not decode to its text"
            )
    return problems


def _check_shard(path: Path, shard: dict[str, Any], eot_id: int, vocab_size: int) -> list[str]:
    if not path.is_file():
        return ["missing"]
    try:
        header = read_header(path)
        offsets = read_document_offsets(path)
    except (ShardFormatError, OSError) as error:
        return [str(error)]
    problems = []
    if header.n_tokens != shard["tokens"] or header.n_documents != shard["documents"]:
        problems.append(
            f"header has {header.n_tokens} tokens in {header.n_documents} documents, stats say "
            f"{shard['tokens']} in {shard['documents']}"
        )
    if header.vocab_size != vocab_size or header.dtype != token_dtype(vocab_size):
        problems.append(
            f"header vocabulary {header.vocab_size} ({header.dtype.name}) does not match the "
            f"tokenizer's {vocab_size} ({token_dtype(vocab_size).name})"
        )
    tokens = read_tokens(path)
    ends = offsets[1:] - 1
    if np.any(np.diff(offsets.astype(np.int64)) < 1) or np.any(tokens[ends] != eot_id):
        problems.append("a document does not end with the end-of-document token")
    eot_count = 0
    largest = -1
    chunk = 1 << 24
    for start in range(0, header.n_tokens, chunk):
        part = tokens[start : start + chunk]
        eot_count += int(np.count_nonzero(part == eot_id))
        largest = max(largest, int(part.max()))
    if eot_count != header.n_documents:
        problems.append(f"{eot_count} end-of-document tokens for {header.n_documents} documents")
    if largest >= vocab_size:
        problems.append(f"token id {largest} outside the vocabulary of {vocab_size}")
    return problems
