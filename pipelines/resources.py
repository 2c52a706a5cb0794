"""Dagster resources: where data lives, where sources are fetched from, how steps run."""

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import Field

from pipelines.executors import ExecutorSettings
from pipelines.http import HttpClient
from pipelines.mirror import Mirror
from pipelines.settings import default_corpus_dir, default_data_root, default_profile
from pipelines.storage import VersionedStore

COMMONCRAWL_DATA_URL = "https://data.commoncrawl.org"
COMMONCRAWL_INDEX_URL = "https://index.commoncrawl.org"


class DataRoot(dg.ConfigurableResource):
    """The root under which every asset version is published (a path or fsspec URL)."""

    url: str = Field(default_factory=default_data_root, description="Local path or fsspec URL.")

    def store(self) -> VersionedStore:
        return VersionedStore(self.url)


@dataclass(frozen=True)
class SourceEndpoints:
    """Base URLs of the services, valid while the profile is open."""

    commoncrawl_data_url: str
    commoncrawl_index_url: str

    def commoncrawl_data(self) -> HttpClient:
        return HttpClient(self.commoncrawl_data_url)

    def commoncrawl_index(self) -> HttpClient:
        return HttpClient(self.commoncrawl_index_url)


class SourcesProfile(dg.ConfigurableResource):
    """Where the fetchers get their data.

    ``sample`` (the default) serves the offline sample corpus on 127.0.0.1 through
    ``pipelines.mirror`` in the real services' URL layout; ``internet`` talks to the real hosts;
    ``custom`` uses the URLs given here (e.g. a team's own mirror).
    """

    profile: str = Field(default_factory=default_profile, description="sample | internet | custom")
    corpus_dir: str = Field(
        default_factory=default_corpus_dir,
        description="Folder the sample profile serves (env LMFORGE_CORPUS_DIR).",
    )
    commoncrawl_data_url: str = COMMONCRAWL_DATA_URL
    commoncrawl_index_url: str = COMMONCRAWL_INDEX_URL

    @contextlib.contextmanager
    def open(self) -> Iterator[SourceEndpoints]:
        """Endpoints for this profile; for ``sample`` a loopback mirror runs meanwhile."""
        if self.profile == "sample":
            with Mirror(Path(self.corpus_dir)) as mirror:
                yield SourceEndpoints(
                    commoncrawl_data_url=f"{mirror.base_url}/commoncrawl",
                    commoncrawl_index_url=f"{mirror.base_url}/index",
                )
        elif self.profile == "internet":
            yield SourceEndpoints(COMMONCRAWL_DATA_URL, COMMONCRAWL_INDEX_URL)
        elif self.profile == "custom":
            yield SourceEndpoints(self.commoncrawl_data_url, self.commoncrawl_index_url)
        else:
            raise ValueError(
                f"unknown sources profile {self.profile!r}: use sample, internet or custom "
                "(resource 'sources', setting 'profile', env LMFORGE_SOURCES_PROFILE)"
            )


class DatatroveExecutor(dg.ConfigurableResource):
    """Which datatrove executor runs the heavy document steps: local, slurm or ray."""

    kind: str = Field(default="local", description="local | slurm | ray")
    workers: int = Field(default=0, description="Parallel workers; 0 means one per CPU core.")
    slurm_partition: str = Field(default="", description="Slurm partition (kind=slurm).")
    slurm_time: str = Field(default="12:00:00", description="Slurm time limit per array job.")
    ray_address: str = Field(default="", description="Ray cluster address (kind=ray).")

    def settings(self) -> ExecutorSettings:
        return ExecutorSettings(
            kind=self.kind,
            workers=self.workers or os.cpu_count() or 1,
            partition=self.slurm_partition or None,
            time=self.slurm_time,
            ray_address=self.ray_address or None,
        )
