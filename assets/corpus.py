"""deduplicated_corpus: exact and MinHash near-duplicate removal across every source."""

import dagster as dg
from pydantic import Field

from assets.dedup import DedupSettings, deduplicate
from assets.publishing import document_files, report, upstream_versions
from pipelines.resources import DataRoot
from pipelines.storage import Manifest

CODE_VERSION = "2"
MAX_DUPLICATE_RATE = 0.5


class DedupConfig(dg.Config):
    """MinHash LSH settings (FineWeb's defaults: word 5-grams, 14 bands of 8 hashes)."""

    ngram: int = Field(default=5, description="Words per shingle.")
    num_bands: int = Field(default=14, description="LSH bands.")
    rows_per_band: int = Field(default=8, description="Hashes per band.")


@dg.asset(
    group_name="corpus",
    kinds={"python", "parquet"},
    code_version=CODE_VERSION,
    owners=["team:data"],
    description=(
        "Documents of every source with exact duplicates (normalized-text hash) and near "
        "duplicates (MinHash LSH over word shingles) removed; one representative per cluster."
    ),
)
def deduplicated_corpus(
    context: dg.AssetExecutionContext,
    config: DedupConfig,
    web_documents: dict[str, Manifest],
    code_documents: Manifest,
    book_documents: Manifest,
    paper_documents: Manifest,
    data_root: DataRoot,
) -> dg.Output[Manifest]:
    store = data_root.store()
    settings = DedupSettings(
        ngram=config.ngram, num_bands=config.num_bands, rows_per_band=config.rows_per_band
    )
    upstream = upstream_versions(
        web_documents=web_documents,
        code_documents=code_documents,
        book_documents=book_documents,
        paper_documents=paper_documents,
    )
    with store.publish(
        "deduplicated_corpus", None, CODE_VERSION, config.model_dump(), upstream
    ) as staging:
        if staging.existing is None:
            sources = [web_documents[crawl] for crawl in sorted(web_documents)]
            sources += [code_documents, book_documents, paper_documents]
            inputs = [path for manifest in sources for path in document_files(manifest)]
            stats = deduplicate(inputs, staging.dir, settings)
            staging.counts.update(stats.to_counts())
    counts = staging.result.counts
    return report(
        context,
        staging,
        {
            "dagster/row_count": counts.get("kept", 0),
            "cluster_sizes": dg.MetadataValue.json(counts.get("cluster_size_histogram", {})),
            "example_pairs": dg.MetadataValue.json(counts.get("example_pairs", [])),
        },
    )


@dg.asset_check(asset=deduplicated_corpus, description="Corpus is not empty.", blocking=True)
def corpus_not_empty(deduplicated_corpus: Manifest) -> dg.AssetCheckResult:
    kept = deduplicated_corpus.counts.get("kept", 0)
    return dg.AssetCheckResult(passed=kept > 0, metadata={"documents": kept})


@dg.asset_check(asset=deduplicated_corpus, description="Duplicate rate within bounds.")
def duplicate_rate_bounded(deduplicated_corpus: Manifest) -> dg.AssetCheckResult:
    counts = deduplicated_corpus.counts
    total = counts.get("input_documents", 0)
    removed = total - counts.get("kept", 0)
    rate = removed / total if total else 0.0
    return dg.AssetCheckResult(
        passed=rate <= MAX_DUPLICATE_RATE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"duplicate_rate": round(rate, 4), "limit": MAX_DUPLICATE_RATE},
    )
