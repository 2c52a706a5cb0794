"""Tokenizer training and token shards on real Project Gutenberg text."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer, pre_tokenizers

from assets.schema import DOCUMENT_SCHEMA
from assets.tokenization import (
    END_OF_TEXT,
    PAD,
    ShardSettings,
    TokenizerSettings,
    assign_splits,
    load_tokenizer,
    train_tokenizer,
    verify_shards,
    write_token_shards,
)
from model.shards import HEADER_SIZE, read_document_offsets, read_header, read_tokens

VOCAB = 1024
# Alice and Sherlock Holmes as "books", Die Verwandlung (German, Latin-1 file) as "web".
BOOKS = {"pg11-0.txt": "books", "pg1661.txt": "books", "pg22367-8.txt": "web"}
QUOTED_SPECIAL = f"A page that quotes {END_OF_TEXT} and {PAD} in its text."


def read_book(corpus_dir: Path, name: str) -> str:
    raw = (corpus_dir / "gutenberg" / "texts" / name).read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def row(doc_id: str, text: str, source: str) -> dict:
    return {
        "id": doc_id,
        "text": text,
        "source": source,
        "url": None,
        "license": "public-domain",
        "language": None,
        "language_score": None,
        "crawl": None,
        "fetched_at": None,
        "quality_signals": "{}",
        "metadata": "{}",
    }


def chunk_book(text: str, paragraphs: int = 20) -> list[str]:
    """A book as documents of ``paragraphs`` paragraphs each (line ends kept as served)."""
    parts = [part for part in text.split("\r\n\r\n") if part.strip()]
    return ["\r\n\r\n".join(parts[i : i + paragraphs]) for i in range(0, len(parts), paragraphs)]


def write_rows(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows, schema=DOCUMENT_SCHEMA), path)
    return path


@pytest.fixture(scope="module")
def corpus(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two document tables, ``a.parquet`` (books) then ``b.parquet`` (web + one odd page)."""
    root = tmp_path_factory.mktemp("documents")
    tables: dict[str, list[dict]] = {"books": [], "web": []}
    for name, source in BOOKS.items():
        for i, text in enumerate(chunk_book(read_book(corpus_dir, name))):
            tables[source].append(row(f"{name}#{i}", text, source))
    tables["web"].append(row("quoted-special", QUOTED_SPECIAL, "web"))
    return [
        write_rows(root / "a.parquet", tables["books"]),
        write_rows(root / "b.parquet", tables["web"]),
    ]


def all_rows(files: list[Path]) -> list[dict]:
    """Documents in the order the stages read them (files by sorted path)."""
    return [r for path in sorted(files) for r in pq.read_table(path).to_pylist()]


@pytest.fixture(scope="module")
def tokenizer_dir(corpus: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tokenizer")
    train_tokenizer(corpus, out, TokenizerSettings(vocab_size=VOCAB))
    return out


@pytest.fixture(scope="module")
def shards(corpus: list[Path], tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("shards")
    settings = ShardSettings(val_fraction=0.1, max_tokens_per_shard=60_000)
    stats = write_token_shards(corpus, tokenizer_dir / "tokenizer.json", out, settings)
    return out, stats, settings


def decoded_documents(tokenizer: Tokenizer, path: Path, eot_id: int) -> list[str]:
    tokens = read_tokens(path)
    offsets = read_document_offsets(path)
    texts = []
    for start, end in itertools.pairwise(offsets):
        assert tokens[end - 1] == eot_id
        texts.append(tokenizer.decode(tokens[start : end - 1].tolist(), skip_special_tokens=False))
    return texts


def test_tokenizer_is_byte_level_bpe_loadable_by_tokenizers(
    tokenizer_dir: Path, corpus: list[Path]
) -> None:
    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    assert tokenizer.get_vocab_size() == VOCAB
    assert tokenizer.token_to_id(END_OF_TEXT) == 0
    assert tokenizer.token_to_id(PAD) == 1
    assert set(pre_tokenizers.ByteLevel.alphabet()) <= set(tokenizer.get_vocab())
    config = json.loads((tokenizer_dir / "tokenizer.json").read_text())
    assert config["model"]["type"] == "BPE"
    assert config["pre_tokenizer"]["add_prefix_space"] is False
    assert config["decoder"]["type"] == "ByteLevel"

    paragraph = all_rows(corpus)[3]["text"]
    encoding = tokenizer.encode(paragraph)
    assert tokenizer.decode(encoding.ids) == paragraph
    assert len(encoding.ids) < len(paragraph.encode()) / 2, "merges should compress English"
    # Characters the sample never contained still round-trip through their bytes.
    unseen = "Ελληνικά, 中文 and 🙂\ttabs"
    assert tokenizer.decode(tokenizer.encode(unseen).ids) == unseen


def test_training_is_deterministic(corpus: list[Path], tokenizer_dir: Path, tmp_path: Path) -> None:
    stats = train_tokenizer(corpus, tmp_path, TokenizerSettings(vocab_size=VOCAB))
    assert (tmp_path / "tokenizer.json").read_bytes() == (
        tokenizer_dir / "tokenizer.json"
    ).read_bytes()
    assert stats.special_tokens == {END_OF_TEXT: 0, PAD: 1}
    assert stats.vocab_size == VOCAB
    assert stats.sampled_bytes == sum(s["available_bytes"] for s in stats.sources.values())


def test_sample_is_capped_and_source_weighted(corpus: list[Path], tmp_path: Path) -> None:
    settings = TokenizerSettings(
        vocab_size=512, sample_bytes=200_000, source_weights={"books": 3.0, "web": 1.0}
    )
    stats = train_tokenizer(corpus, tmp_path / "weighted", settings)
    assert stats.sources["books"]["sampled_bytes"] == 150_000
    assert stats.sources["web"]["sampled_bytes"] == 50_000
    assert (
        0 < stats.sources["web"]["sampled_documents"] < stats.sources["web"]["available_documents"]
    )

    # A source with less text than its share passes the rest on to the others.
    web_bytes = stats.sources["web"]["available_bytes"]
    generous = TokenizerSettings(
        vocab_size=512, sample_bytes=2 * web_bytes, source_weights={"books": 1.0, "web": 9.0}
    )
    stats = train_tokenizer(corpus, tmp_path / "generous", generous)
    assert stats.sources["web"]["sampled_bytes"] == web_bytes
    assert stats.sources["books"]["sampled_bytes"] == web_bytes

    excluded = TokenizerSettings(vocab_size=512, source_weights={"web": 0.0})
    stats = train_tokenizer(corpus, tmp_path / "books-only", excluded)
    assert stats.sources["web"]["sampled_documents"] == 0
    assert stats.sources["books"]["sampled_bytes"] == stats.sources["books"]["available_bytes"]


def test_shards_round_trip_the_corpus_split_by_document(shards, corpus, tokenizer_dir) -> None:
    out, stats, settings = shards
    tokenizer = load_tokenizer(tokenizer_dir / "tokenizer.json")
    rows = all_rows(corpus)
    splits = assign_splits([r["id"] for r in rows], settings)
    expected = {
        split: [r for r, s in zip(rows, splits, strict=True) if s == split]
        for split in ("train", "val")
    }

    names = [shard["file"] for shard in stats.shards]
    assert names[:2] == ["train_00000.bin", "train_00001.bin"]
    assert "val_00000.bin" in names
    decoded: dict[str, list[str]] = {"train": [], "val": []}
    for shard in stats.shards:
        path = out / shard["file"]
        header = read_header(path)
        assert header.dtype == np.dtype("<u2")
        assert read_tokens(path).dtype == np.uint16
        assert (header.n_tokens, header.n_documents) == (shard["tokens"], shard["documents"])
        assert path.stat().st_size == HEADER_SIZE + 2 * header.n_tokens
        assert header.n_tokens <= settings.max_tokens_per_shard or header.n_documents == 1
        decoded[shard["split"]] += decoded_documents(tokenizer, path, stats.eot_id)

    for split in ("train", "val"):
        assert decoded[split] == [r["text"] for r in expected[split]]
        assert stats.splits[split]["documents"] == len(expected[split])
    assert not {r["id"] for r in expected["train"]} & {r["id"] for r in expected["val"]}
    assert 0.03 < len(expected["val"]) / len(rows) < 0.2

    # The quoted special tokens are plain text: one end-of-document token per document.
    assert QUOTED_SPECIAL in decoded["train"] + decoded["val"]
    total_eot = sum(
        int(np.count_nonzero(read_tokens(out / name) == stats.eot_id)) for name in names
    )
    assert total_eot == len(rows)

    counts = stats.to_counts()
    assert counts["train_tokens"] + counts["val_tokens"] == sum(
        counts["tokens_per_source"].values()
    )
    assert sum(stats.document_length_histogram.values()) == len(rows)
    assert set(stats.per_source) == {"books", "web"}
    for source, summary in stats.per_source.items():
        source_rows = [r for r in rows if r["source"] == source]
        assert summary["bytes"] == sum(len(r["text"].encode()) for r in source_rows)
        assert summary["train_documents"] + summary["val_documents"] == len(source_rows)
        assert 1.5 < summary["bytes_per_token"] < 6
    # As stored in a manifest and read back.
    manifest_counts = json.loads(json.dumps(counts))
    assert verify_shards(out, tokenizer_dir / "tokenizer.json", manifest_counts) == []


def test_split_is_deterministic_and_stable_under_additions(
    shards, corpus: list[Path], tokenizer_dir: Path, tmp_path: Path
) -> None:
    out, stats, settings = shards
    again = write_token_shards(corpus, tokenizer_dir / "tokenizer.json", tmp_path, settings)
    assert again == stats
    for shard in stats.shards:
        for name in (shard["file"], shard["file"] + ".idx"):
            assert (tmp_path / name).read_bytes() == (out / name).read_bytes()

    ids = [r["id"] for r in all_rows(corpus)]
    grown = assign_splits([*ids, *(f"new-document-{i}" for i in range(500))], settings)
    assert grown[: len(ids)] == assign_splits(ids, settings)
    assert assign_splits(ids, ShardSettings(val_fraction=0.1, seed=1)) != assign_splits(
        ids, settings
    )


def test_small_corpora_still_get_a_validation_document(
    corpus: list[Path], tokenizer_dir: Path, tmp_path: Path
) -> None:
    rows = all_rows(corpus)[:2]
    assert sorted(assign_splits([r["id"] for r in rows], ShardSettings())) == ["train", "val"]
    assert assign_splits([rows[0]["id"]], ShardSettings()) == ["train"]
    assert (
        assign_splits([r["id"] for r in rows], ShardSettings(val_fraction=0.999)).count("train")
        == 1
    )

    path = write_rows(tmp_path / "two.parquet", rows)
    stats = write_token_shards([path], tokenizer_dir / "tokenizer.json", tmp_path / "out")
    assert stats.splits["train"]["documents"] == stats.splits["val"]["documents"] == 1
    assert [s["file"] for s in stats.shards] == ["train_00000.bin", "val_00000.bin"]


def test_verify_shards_catches_tampering(shards, tokenizer_dir: Path, tmp_path: Path) -> None:
    out, stats, _ = shards
    tokenizer_path = tokenizer_dir / "tokenizer.json"
    expected = stats.to_counts()

    def copy(name: str) -> Path:
        return Path(shutil.copytree(out, tmp_path / name))

    # One token of the first document changed in place: sizes and counts still agree.
    changed = copy("changed")
    tokens = np.memmap(changed / "train_00000.bin", dtype="<u2", mode="r+", offset=HEADER_SIZE)
    tokens[5] = 300 if tokens[5] != 300 else 301
    tokens.flush()
    del tokens
    problems = verify_shards(changed, tokenizer_path, expected)
    assert problems == [
        f"train_00000.bin: document 0 ({stats.samples[0]['id']}) does not decode to its text"
    ]

    truncated = copy("truncated")
    with open(truncated / "train_00001.bin", "r+b") as handle:
        handle.truncate((truncated / "train_00001.bin").stat().st_size - 2)
    problems = verify_shards(truncated, tokenizer_path, expected)
    assert len(problems) == 1 and "train_00001.bin" in problems[0] and "header says" in problems[0]

    assert verify_shards(out, tokenizer_path, {**expected, "shards": expected["shards"][1:]}) == [
        "train_00000.bin: shard not listed in the stats",
        f"train: stats say {stats.splits['train']['tokens']} tokens, its shards add up to "
        f"{stats.splits['train']['tokens'] - stats.shards[0]['tokens']}",
        f"train: stats say {stats.splits['train']['documents']} documents, its shards add up to "
        f"{stats.splits['train']['documents'] - stats.shards[0]['documents']}",
    ]

    missing_eot = copy("missing-eot")
    offsets = read_document_offsets(missing_eot / "val_00000.bin")
    tokens = np.memmap(missing_eot / "val_00000.bin", dtype="<u2", mode="r+", offset=HEADER_SIZE)
    tokens[int(offsets[1]) - 1] = 300
    tokens.flush()
    del tokens
    problems = verify_shards(missing_eot, tokenizer_path, expected)
    assert any("does not end with the end-of-document token" in p for p in problems)
