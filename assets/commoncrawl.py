"""Common Crawl: the crawl list, a crawl's file listings, and WARC downloads.

Plain functions over :class:`pipelines.http.HttpClient`; two clients are involved, as on the real
service: one rooted at the index host (``index.commoncrawl.org``, which serves collinfo.json) and
one at the data host (``data.commoncrawl.org``, which serves ``crawl-data/...``).

Downloaded files keep their ``crawl-data/...`` path below ``dest_dir``: the path is unique across
crawls and segments, is the locator the service itself uses, and so can be written into the
document table as is.
"""

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import dagster as dg
from pydantic import Field

from assets.publishing import report
from pipelines.http import FetchError, HttpClient, TooLargeError
from pipelines.partitions import cc_crawl
from pipelines.resources import DataRoot, SourcesProfile
from pipelines.storage import Manifest

log = logging.getLogger(__name__)
CODE_VERSION = "1"

KINDS = ("warc", "wat", "wet")
_CRAWL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class CrawlInfo:
    """One entry of collinfo.json. ``cdx_api``/``timegate`` are None for offline pseudo-crawls."""

    id: str
    name: str
    cdx_api: str | None
    timegate: str | None
    start: str | None
    end: str | None


@dataclass(frozen=True)
class FetchedFile:
    path: Path
    url: str
    relative_path: str
    size: int
    sha256: str


def _check_crawl_id(crawl_id: str) -> None:
    # The id becomes part of URLs and local paths.
    if not _CRAWL_ID.match(crawl_id):
        raise ValueError(f"not a crawl id: {crawl_id!r} (expected e.g. CC-MAIN-2024-22)")


def list_crawls(index: HttpClient) -> list[CrawlInfo]:
    """The crawls of ``collinfo.json`` on the index host, in the service's order (newest first)."""
    url = index.url_for("collinfo.json")
    try:
        entries: Any = json.loads(index.get_bytes(url))
    except ValueError as error:
        raise FetchError(f"GET {url}: not a JSON document: {error}", url=url) from error
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("id"), str) for e in entries
    ):
        raise FetchError(f"GET {url}: expected a JSON list of objects with an 'id'", url=url)
    return [
        CrawlInfo(
            id=e["id"],
            name=e.get("name") or e["id"],
            cdx_api=e.get("cdx-api") or None,
            timegate=e.get("timegate") or None,
            start=e.get("from") or None,
            end=e.get("to") or None,
        )
        for e in entries
    ]


def list_warc_paths(data: HttpClient, crawl_id: str, kind: str = "warc") -> list[str]:
    """The ``crawl-data/...`` paths of ``crawl-data/<crawl>/<kind>.paths.gz`` on the data host."""
    _check_crawl_id(crawl_id)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    url = data.url_for(f"crawl-data/{crawl_id}/{kind}.paths.gz")
    try:
        lines = list(data.stream_lines(url, gzip=True))
    except FetchError as error:
        if error.status == 404:
            raise FetchError(
                f"no {kind} listing for crawl {crawl_id} at {url} (HTTP 404): the crawl id is "
                f"unknown to this service, or the crawl has no {kind} files",
                url=url,
                status=404,
            ) from error
        raise
    paths = [line.strip() for line in lines if line.strip()]
    for path in paths:
        parts = PurePosixPath(path).parts
        if path.startswith("/") or ".." in parts or not path.startswith("crawl-data/"):
            raise FetchError(f"GET {url}: unexpected entry {path!r} in the listing", url=url)
    return paths


def fetch_warcs(
    data: HttpClient,
    crawl_id: str,
    dest_dir: Path,
    *,
    max_files: int,
    max_bytes: int | None = None,
) -> list[FetchedFile]:
    """Download the first ``max_files`` WARC files of a crawl to ``dest_dir/crawl-data/...``.

    ``max_bytes`` bounds the total: the file that would go past it is not kept, and the fetch
    ends with the files before it (an error if even the first one does not fit). A file that
    still fails after the client's retries raises :class:`FetchError` naming its URL; an
    interrupted file stays as ``.part`` and is resumed by the next call.
    """
    if max_files < 1:
        raise ValueError(f"max_files must be at least 1, got {max_files}")
    paths = list_warc_paths(data, crawl_id, "warc")[:max_files]
    fetched: list[FetchedFile] = []
    used = 0
    for number, relative in enumerate(paths, start=1):
        url = data.url_for(relative)
        remaining = None if max_bytes is None else max_bytes - used
        try:
            result = data.download(url, Path(dest_dir) / relative, max_bytes=remaining)
        except TooLargeError as error:
            if not fetched:
                raise FetchError(
                    f"{crawl_id}: the first WARC file {url} does not fit in max_bytes={max_bytes}"
                    f" ({error})",
                    url=url,
                ) from error
            log.info("%s: stopping before %s, max_bytes=%d reached", crawl_id, url, max_bytes)
            break
        except FetchError as error:
            raise FetchError(
                f"{crawl_id}: WARC file {number}/{len(paths)} failed: {error}",
                url=url,
                status=error.status,
            ) from error
        used += result.size
        fetched.append(
            FetchedFile(
                path=result.path,
                url=url,
                relative_path=relative,
                size=result.size,
                sha256=result.sha256,
            )
        )
    return fetched


class CommonCrawlConfig(dg.Config):
    """How much of a crawl to fetch: a small run stays small."""

    max_files: int = Field(default=4, description="WARC files to take from the crawl's list.")
    max_bytes_per_file: int | None = Field(
        default=None, description="Refuse files larger than this many bytes."
    )


@dg.asset(
    group_name="sources",
    partitions_def=cc_crawl,
    kinds={"python", "warc"},
    code_version=CODE_VERSION,
    owners=["team:data"],
    description=(
        "WARC files of one Common Crawl crawl (partition = crawl id), fetched over HTTP from "
        "the configured base URL (the offline sample mirror by default) and stored as served."
    ),
)
def commoncrawl_warcs(
    context: dg.AssetExecutionContext,
    config: CommonCrawlConfig,
    data_root: DataRoot,
    sources: SourcesProfile,
) -> dg.Output[Manifest]:
    crawl = context.partition_key
    store = data_root.store()
    settings = config.model_dump() | {"profile": sources.profile}
    with store.publish("commoncrawl_warcs", crawl, CODE_VERSION, settings, {}) as staging:
        if staging.existing is None:
            with sources.open() as endpoints:
                fetched = fetch_warcs(
                    endpoints.commoncrawl_data(),
                    crawl,
                    staging.dir,
                    max_files=config.max_files,
                    max_bytes=config.max_bytes_per_file,
                )
            staging.counts.update(
                {
                    "warc_files": len(fetched),
                    "source_urls": [f.url for f in fetched],
                }
            )
    manifest = staging.result
    return report(
        context,
        staging,
        {"source_urls": dg.MetadataValue.json(manifest.counts.get("source_urls", []))},
    )
