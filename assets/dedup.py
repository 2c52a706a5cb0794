"""Exact and MinHash near-duplicate removal across every document table.

Rules (the same for every run, so a re-run with the same inputs gives the same output):

* Input files are processed in sorted path order, rows in file order. The order only decides
  the row order of the output: which documents are kept does not depend on it.
* Exact duplicates share the hash of their normalized text: Unicode NFKC, lowercased,
  whitespace runs collapsed to one space, stripped (:func:`normalize_text`).
* Near duplicates: word 5-gram shingles of the text with punctuation and symbols removed as
  well (:func:`shingle_set`), a MinHash of ``num_bands * rows_per_band`` permutations, and
  MinHash LSH with explicit ``(bands, rows)``. A pair is a candidate when all rows of at least
  one band agree; the probability of that for Jaccard similarity ``s`` is
  ``1 - (1 - s**rows) ** bands`` (see :meth:`DedupSettings.detection_probability`), an S-curve
  whose midpoint is near ``(1 / bands) ** (1 / rows)``: about 0.72 for 14 x 8. A candidate is
  confirmed when the MinHash estimate of its Jaccard similarity is at least ``min_jaccard``,
  which drops the band collisions of less similar pairs. Confirmed pairs are joined
  transitively into clusters. Documents with fewer than ``min_words`` words skip MinHash
  (their shingle sets are too small for a meaningful estimate) but are still exact-deduplicated.
* One representative per cluster (exact and near duplicates together) is kept: the earliest
  ``fetched_at`` (ISO 8601 strings compared as text; a missing value sorts last), then the
  longest text (in characters), then the smallest id. A removed document is ``exact_dedup`` when its
  normalized text equals the kept document's, otherwise ``minhash_dedup``; the reason names
  the kept id.
* The kept document's ``metadata`` JSON gets a ``dedup`` object: ``cluster_size`` (1 for a
  unique document), ``exact_duplicates``, ``near_duplicates`` and ``duplicate_ids`` (sorted,
  at most ``max_listed_duplicates``).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datasketch import MinHash, MinHashLSH

from assets.schema import DOCUMENT_SCHEMA, EXCLUDED_SCHEMA

EXACT_FILTER = "exact_dedup"
NEAR_FILTER = "minhash_dedup"
_NON_WORD = re.compile(r"[\W_]+")
_HEAD_CHARS = 100


@dataclass(frozen=True)
class DedupSettings:
    """Shingling, MinHash LSH and reporting parameters.

    ``num_bands`` and ``rows_per_band`` set the similarity threshold: see
    :attr:`threshold` and :meth:`detection_probability`.
    """

    ngram: int = 5
    num_bands: int = 14
    rows_per_band: int = 8
    seed: int = 1
    min_jaccard: float = 0.7
    min_words: int = 20
    batch_size: int = 1024
    max_listed_duplicates: int = 100
    max_examples: int = 5

    def __post_init__(self) -> None:
        if self.ngram < 1 or self.num_bands < 1 or self.rows_per_band < 1:
            raise ValueError("ngram, num_bands and rows_per_band must be positive")
        if not 0.0 <= self.min_jaccard <= 1.0:
            raise ValueError(f"min_jaccard {self.min_jaccard} is not in [0, 1]")

    @property
    def num_perm(self) -> int:
        return self.num_bands * self.rows_per_band

    @property
    def threshold(self) -> float:
        """Approximate Jaccard similarity at which the LSH S-curve rises through one half."""
        return (1.0 / self.num_bands) ** (1.0 / self.rows_per_band)

    def detection_probability(self, jaccard: float) -> float:
        """Probability that a pair with this Jaccard similarity collides in some band."""
        return 1.0 - (1.0 - jaccard**self.rows_per_band) ** self.num_bands


@dataclass
class DedupStats:
    """What deduplication did.

    ``per_source`` maps a source to ``input``, ``kept``, ``exact_removed`` and
    ``near_removed`` counts. ``cluster_size_histogram`` maps a cluster size to the number of
    clusters of that size (size 1 = a document with no duplicate). ``example_pairs`` holds a
    few removed/kept pairs of each filter: ``filter``, ``kept_id``, ``removed_id``,
    ``kept_head``, ``removed_head`` (first 100 characters) and, for near duplicates,
    ``estimated_jaccard``. ``kept_text_bytes`` is the UTF-8 size of the kept texts.
    """

    input_documents: int = 0
    kept: int = 0
    exact_removed: int = 0
    near_removed: int = 0
    minhash_skipped_short: int = 0
    kept_text_bytes: int = 0
    threshold: float = 0.0
    per_source: dict[str, dict[str, int]] = field(default_factory=dict)
    cluster_size_histogram: dict[int, int] = field(default_factory=dict)
    example_pairs: list[dict[str, Any]] = field(default_factory=list)

    def to_counts(self) -> dict[str, Any]:
        """JSON-ready form for a manifest (histogram keys become strings)."""
        data = asdict(self)
        data["cluster_size_histogram"] = {
            str(size): count for size, count in sorted(self.cluster_size_histogram.items())
        }
        return data


def normalize_text(text: str) -> str:
    """The form compared for exact duplicates: NFKC, lowercase, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def shingle_words(text: str) -> list[str]:
    """Words for shingling: :func:`normalize_text` with punctuation and symbols removed too.

    Dropping punctuation makes editions that differ only in typography (straight versus curly
    quotes, dashes) shingle alike, as datatrove's and RedPajama's MinHash steps do.
    """
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).lower()).split()


def shingle_set(text: str, ngram: int = 5) -> set[str]:
    """The set of word n-grams; a text shorter than ``ngram`` words is one shingle."""
    words = shingle_words(text)
    if len(words) <= ngram:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + ngram]) for i in range(len(words) - ngram + 1)}


class _Hasher:
    """MinHash signatures that share one set of permutations.

    datasketch draws the permutations from the seed every time a MinHash is built; building
    them once and passing them in saves that per document.
    """

    _CHUNK = 50_000

    def __init__(self, settings: DedupSettings) -> None:
        self.num_perm = settings.num_perm
        self.ngram = settings.ngram
        template = MinHash(num_perm=self.num_perm, seed=settings.seed)
        self.seed = settings.seed
        self.scheme = template.scheme
        self.permutations = template.permutations

    def signature(self, text: str) -> MinHash:
        minhash = MinHash(
            num_perm=self.num_perm,
            seed=self.seed,
            permutations=self.permutations,
            scheme=self.scheme,
        )
        shingles = [s.encode("utf-8") for s in shingle_set(text, self.ngram)]
        # update_batch builds a (shingles x permutations) matrix; chunks bound its memory for
        # book-length documents.
        for start in range(0, len(shingles), self._CHUNK):
            minhash.update_batch(shingles[start : start + self._CHUNK])
        return minhash


def minhash_signature(text: str, settings: DedupSettings | None = None) -> MinHash:
    """The MinHash that :func:`deduplicate` computes for a text."""
    return _Hasher(settings or DedupSettings()).signature(text)


class _UnionFind:
    """Disjoint sets over group numbers: the connected components of the confirmed pairs
    (a few lines, where scipy's connected_components would need the whole edge list)."""

    def __init__(self) -> None:
        self.parent: list[int] = []

    def add(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, item: int) -> int:
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass(slots=True)
class _Doc:
    id: str
    source: str
    fetched_at: str | None
    length: int
    group: int

    def rank(self) -> tuple[bool, str, int, str]:
        """Sort key of the representative rule: earliest fetched_at, longest, smallest id."""
        return (self.fetched_at is None, self.fetched_at or "", -self.length, self.id)


def _iter_batches(
    files: list[Path], columns: list[str], batch_size: int
) -> Iterator[pa.RecordBatch]:
    for path in files:
        parquet = pq.ParquetFile(path)
        missing = set(DOCUMENT_SCHEMA.names) - set(parquet.schema_arrow.names)
        if missing:
            raise ValueError(f"{path}: not a document table, missing columns {sorted(missing)}")
        yield from parquet.iter_batches(batch_size=batch_size, columns=columns)


def _estimate(a: np.ndarray, b: np.ndarray) -> float:
    """MinHash Jaccard estimate: the share of equal signature slots, as ``MinHash.jaccard``
    computes it, but on the bare hash value arrays kept instead of MinHash objects."""
    return float(np.count_nonzero(a == b)) / len(a)


class _Clustering:
    """Documents in processing order, grouped by normalized text and joined by MinHash LSH."""

    def __init__(self, settings: DedupSettings) -> None:
        self.settings = settings
        self.hasher = _Hasher(settings)
        # Explicit params: datasketch would otherwise pick bands and rows itself from a
        # threshold by minimising weighted false positive and negative rates.
        self.lsh = MinHashLSH(
            num_perm=settings.num_perm, params=(settings.num_bands, settings.rows_per_band)
        )
        self.union_find = _UnionFind()
        self.docs: list[_Doc] = []
        self.group_of_hash: dict[bytes, int] = {}
        self.signatures: dict[int, np.ndarray] = {}
        self.skipped_short = 0

    def add(self, doc_id: str, text: str, source: str, fetched_at: str | None) -> None:
        digest = hashlib.blake2b(normalize_text(text).encode("utf-8"), digest_size=16).digest()
        group = self.group_of_hash.get(digest)
        if group is None:
            group = self.group_of_hash[digest] = self.union_find.add()
            # Exact duplicates have the same shingles, so one signature per group suffices.
            if len(shingle_words(text)) < self.settings.min_words:
                self.skipped_short += 1
            else:
                self._add_signature(group, self.hasher.signature(text))
        self.docs.append(_Doc(doc_id, source, fetched_at, len(text), group))

    def _add_signature(self, group: int, minhash: MinHash) -> None:
        self.signatures[group] = minhash.hashvalues
        # Querying before inserting sees each candidate pair once, from its later member.
        for other in self.lsh.query(minhash):
            if self.similarity(group, other) >= self.settings.min_jaccard:
                self.union_find.union(group, other)
        self.lsh.insert(group, minhash, check_duplication=False)

    def similarity(self, group: int, other: int) -> float:
        return _estimate(self.signatures[group], self.signatures[other])

    def resolve(self) -> tuple[list[int], dict[int, dict[str, Any]], Counter[int]]:
        """Pick each cluster's representative.

        Returns, per document, the index of the document kept for it (itself when kept); the
        ``dedup`` metadata of each kept document; and the cluster size histogram.
        """
        members: dict[int, list[int]] = {}
        for index, doc in enumerate(self.docs):
            members.setdefault(self.union_find.find(doc.group), []).append(index)
        kept_of = [0] * len(self.docs)
        kept_info: dict[int, dict[str, Any]] = {}
        for indices in members.values():
            kept = min(indices, key=lambda i: self.docs[i].rank())
            duplicates = [i for i in indices if i != kept]
            exact = sum(self.is_exact(i, kept) for i in duplicates)
            kept_info[kept] = {
                "cluster_size": len(indices),
                "exact_duplicates": exact,
                "near_duplicates": len(duplicates) - exact,
                "duplicate_ids": sorted(self.docs[i].id for i in duplicates)[
                    : self.settings.max_listed_duplicates
                ],
            }
            for i in indices:
                kept_of[i] = kept
        return kept_of, kept_info, Counter(len(m) for m in members.values())

    def is_exact(self, index: int, kept: int) -> bool:
        return self.docs[index].group == self.docs[kept].group

    def removal(self, index: int, kept: int) -> tuple[str, str]:
        """The filter name and reason for a removed document."""
        kept_id = self.docs[kept].id
        if self.is_exact(index, kept):
            return EXACT_FILTER, f"exact duplicate of {kept_id}"
        similarity = self.similarity(self.docs[index].group, self.docs[kept].group)
        return NEAR_FILTER, f"near duplicate of {kept_id} (estimated Jaccard {similarity:.3f})"


def _with_dedup_metadata(raw: str | None, info: dict[str, Any], doc_id: str) -> str:
    metadata = json.loads(raw) if raw else {}
    if not isinstance(metadata, dict):
        raise ValueError(f"document {doc_id}: metadata is not a JSON object")
    metadata["dedup"] = info
    return json.dumps(metadata, ensure_ascii=False, sort_keys=True)


def deduplicate(
    document_files: list[Path], out_dir: Path, settings: DedupSettings | None = None
) -> DedupStats:
    """Remove exact and near duplicates across all document tables (rules in the module doc).

    Writes ``out_dir/documents.parquet`` (kept, DOCUMENT_SCHEMA) and ``out_dir/excluded.parquet``
    (removed, EXCLUDED_SCHEMA). Reads the inputs twice in batches, holding per document only
    a few fields, plus one MinHash signature per distinct normalized text.
    """
    settings = settings or DedupSettings()
    files = sorted((Path(p) for p in document_files), key=str)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    clustering = _Clustering(settings)
    names = ["id", "text", "source", "fetched_at"]
    for batch in _iter_batches(files, names, settings.batch_size):
        columns = [batch.column(name).to_pylist() for name in names]
        for doc_id, text, source, fetched_at in zip(*columns, strict=True):
            clustering.add(doc_id, text, source, fetched_at)
    kept_of, kept_info, cluster_sizes = clustering.resolve()

    examples = _pick_examples(clustering, kept_of, settings.max_examples)
    heads, kept_text_bytes = _write_outputs(
        files, out_dir, settings, clustering, kept_of, kept_info, examples
    )

    stats = DedupStats(
        input_documents=len(clustering.docs),
        minhash_skipped_short=clustering.skipped_short,
        kept_text_bytes=kept_text_bytes,
        threshold=settings.threshold,
        cluster_size_histogram=dict(sorted(cluster_sizes.items())),
    )
    for index, doc in enumerate(clustering.docs):
        counts = stats.per_source.setdefault(
            doc.source, {"input": 0, "kept": 0, "exact_removed": 0, "near_removed": 0}
        )
        counts["input"] += 1
        kept = kept_of[index]
        if kept == index:
            counts["kept"] += 1
            stats.kept += 1
        elif clustering.is_exact(index, kept):
            counts["exact_removed"] += 1
            stats.exact_removed += 1
        else:
            counts["near_removed"] += 1
            stats.near_removed += 1
    for index in examples:
        kept = kept_of[index]
        example: dict[str, Any] = {
            "filter": clustering.removal(index, kept)[0],
            "kept_id": clustering.docs[kept].id,
            "removed_id": clustering.docs[index].id,
            "kept_head": heads[kept],
            "removed_head": heads[index],
        }
        if not clustering.is_exact(index, kept):
            example["estimated_jaccard"] = clustering.similarity(
                clustering.docs[index].group, clustering.docs[kept].group
            )
        stats.example_pairs.append(example)
    return stats


def _pick_examples(clustering: _Clustering, kept_of: list[int], limit: int) -> list[int]:
    """The first ``limit`` removed documents of each filter, in processing order."""
    picked: dict[bool, list[int]] = {True: [], False: []}
    for index, kept in enumerate(kept_of):
        if kept != index:
            bucket = picked[clustering.is_exact(index, kept)]
            if len(bucket) < limit:
                bucket.append(index)
    return sorted(picked[True] + picked[False])


def _write_outputs(
    files: list[Path],
    out_dir: Path,
    settings: DedupSettings,
    clustering: _Clustering,
    kept_of: list[int],
    kept_info: dict[int, dict[str, Any]],
    examples: list[int],
) -> tuple[dict[int, str], int]:
    """Second pass: stream the inputs again into the kept and excluded tables.

    Returns the first characters of the example documents and of those kept for them, and the
    UTF-8 size of the kept texts.
    """
    wanted_heads = set(examples) | {kept_of[i] for i in examples}
    heads: dict[int, str] = {}
    kept_text_bytes = 0
    columns = list(DOCUMENT_SCHEMA.names)
    metadata_position = DOCUMENT_SCHEMA.get_field_index("metadata")
    with (
        pq.ParquetWriter(out_dir / "documents.parquet", DOCUMENT_SCHEMA) as kept_writer,
        pq.ParquetWriter(out_dir / "excluded.parquet", EXCLUDED_SCHEMA) as excluded_writer,
    ):
        start = 0
        for batch in _iter_batches(files, columns, settings.batch_size):
            table = pa.Table.from_batches([batch]).select(columns).cast(DOCUMENT_SCHEMA)
            rows = list(range(start, start + table.num_rows))
            start += table.num_rows
            texts = table.column("text").to_pylist()
            for offset, index in enumerate(rows):
                if index in wanted_heads:
                    heads[index] = texts[offset][:_HEAD_CHARS]

            keep_mask = pa.array([kept_of[i] == i for i in rows], pa.bool_())
            kept_rows = [i for i in rows if kept_of[i] == i]
            if kept_rows:
                kept_table = table.filter(keep_mask)
                metadata = [
                    _with_dedup_metadata(raw, kept_info[i], clustering.docs[i].id)
                    for raw, i in zip(
                        kept_table.column("metadata").to_pylist(), kept_rows, strict=True
                    )
                ]
                kept_table = kept_table.set_column(
                    metadata_position,
                    DOCUMENT_SCHEMA.field("metadata"),
                    pa.array(metadata, pa.string()),
                )
                kept_writer.write_table(kept_table)
                kept_text_bytes += pc.sum(pc.binary_length(kept_table.column("text"))).as_py()

            removed_rows = [i for i in rows if kept_of[i] != i]
            if removed_rows:
                filters, reasons = zip(
                    *(clustering.removal(i, kept_of[i]) for i in removed_rows), strict=True
                )
                removed_table = (
                    table.filter(pc.invert(keep_mask))
                    .append_column(EXCLUDED_SCHEMA.field("filter"), pa.array(filters, pa.string()))
                    .append_column(EXCLUDED_SCHEMA.field("reason"), pa.array(reasons, pa.string()))
                )
                excluded_writer.write_table(removed_table)
    return heads, kept_text_bytes
