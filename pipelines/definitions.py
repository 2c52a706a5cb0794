"""The Dagster code location: every asset, check, resource, job, sensor and schedule."""

from __future__ import annotations

import dagster as dg

from assets import (
    arxiv,
    commoncrawl,
    corpus,
    evaluation,
    github,
    gutenberg,
    tokens,
    training,
    web_documents,
)
from pipelines.manifest_io import ManifestIOManager
from pipelines.resources import DataRoot, DatatroveExecutor, SourcesProfile

ASSET_MODULES = [
    commoncrawl,
    web_documents,
    github,
    gutenberg,
    arxiv,
    corpus,
    tokens,
    training,
    evaluation,
]

CRAWL_ASSETS = dg.AssetSelection.assets("commoncrawl_warcs", "web_documents")

crawl_job = dg.define_asset_job(
    "crawl_job",
    selection=CRAWL_ASSETS,
    description="Fetch and process one Common Crawl crawl partition.",
)
model_job = dg.define_asset_job(
    "corpus_to_model_job",
    selection=dg.AssetSelection.all() - CRAWL_ASSETS,
    description=(
        "Every unpartitioned asset: the other sources and their documents, deduplication, "
        "tokenizer, shards, plan, training and evaluation, from the crawls already processed."
    ),
)


def build_resources() -> dict[str, object]:
    root = DataRoot()
    return {
        "data_root": root,
        "io_manager": ManifestIOManager(root=root),
        "sources": SourcesProfile(),
        "executor": DatatroveExecutor(),
        "pipes_subprocess_client": dg.PipesSubprocessClient(),
    }


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=dg.load_assets_from_modules(ASSET_MODULES),
        asset_checks=dg.load_asset_checks_from_modules(ASSET_MODULES),
        jobs=[crawl_job, model_job],
        resources=build_resources(),
    )
