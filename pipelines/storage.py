"""Versioned, atomically published asset outputs.

Every materialization writes ``<data_root>/<asset>/<partition>/<version>/`` holding its files
and a ``manifest.json`` (files with sha256 and size, counts, upstream versions, code version,
config). The version is a hash of the code version, the config and the upstream versions, so
re-running with the same inputs finds the existing version and does no work.

Publishing is atomic: files are written into a hidden staging directory beside the final one
and renamed into place only when complete (on object stores, where there is no rename, the
manifest is uploaded last and a version without a manifest is never read). A crash therefore
never leaves a half-written version visible, and an earlier version is never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

MANIFEST_NAME = "manifest.json"
LATEST_NAME = "LATEST"
UNPARTITIONED = "_all"
_HASH_CHUNK = 1 << 20


class IntegrityError(RuntimeError):
    """A stored version's files do not match its manifest."""


def compute_version(code_version: str, config: dict[str, Any], upstream: dict[str, str]) -> str:
    """Content-address a materialization by what determines its output."""
    payload = json.dumps(
        {"code_version": code_version, "config": config, "upstream": upstream},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Manifest:
    """What one published version holds and where it came from."""

    asset: str
    partition: str
    version: str
    code_version: str
    config: dict[str, Any]
    upstream: dict[str, str]
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    path: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        return cls(**json.loads(text))

    def file_path(self, relpath: str) -> str:
        """Absolute location (path or URL) of one of this version's files."""
        return f"{self.path.rstrip('/')}/{relpath}"

    def local_path(self, relpath: str = "") -> Path:
        """This version (or one of its files) as a local path; only for local data roots."""
        location = self.file_path(relpath) if relpath else self.path
        if "://" in location and not location.startswith("file://"):
            raise ValueError(f"{location} is not on a local filesystem")
        return Path(location.removeprefix("file://"))


class VersionedStore:
    """Publishes and finds versions under an fsspec data root (a local path by default)."""

    def __init__(self, root: str) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(root)
        self.is_local = isinstance(self.fs, LocalFileSystem)
        if self.is_local:
            self.root = os.path.abspath(self.root)

    def partition_dir(self, asset: str, partition: str | None) -> str:
        return f"{self.root}/{asset}/{partition or UNPARTITIONED}"

    def version_dir(self, asset: str, partition: str | None, version: str) -> str:
        return f"{self.partition_dir(asset, partition)}/{version}"

    def find(self, asset: str, partition: str | None, version: str) -> Manifest | None:
        """The published manifest of a version, or None when it was never completed."""
        manifest_path = f"{self.version_dir(asset, partition, version)}/{MANIFEST_NAME}"
        if not self.fs.exists(manifest_path):
            return None
        with self.fs.open(manifest_path, "r") as handle:
            return Manifest.from_json(handle.read())

    def latest(self, asset: str, partition: str | None) -> Manifest | None:
        """The most recently published version of an asset partition."""
        pointer = f"{self.partition_dir(asset, partition)}/{LATEST_NAME}"
        if not self.fs.exists(pointer):
            return None
        with self.fs.open(pointer, "r") as handle:
            version = handle.read().strip()
        return self.find(asset, partition, version)

    def versions(self, asset: str, partition: str | None) -> list[str]:
        """Every completed version of an asset partition, oldest first."""
        base = self.partition_dir(asset, partition)
        if not self.fs.exists(base):
            return []
        found = []
        for entry in self.fs.ls(base, detail=False):
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if name.startswith(".") or name == LATEST_NAME:
                continue
            manifest = self.find(asset, partition, name)
            if manifest is not None:
                found.append(manifest)
        return [m.version for m in sorted(found, key=lambda m: m.created_at)]

    def partitions(self, asset: str) -> list[str]:
        """Partitions of an asset that have at least one published version."""
        base = f"{self.root}/{asset}"
        if not self.fs.exists(base):
            return []
        names = [e.rstrip("/").rsplit("/", 1)[-1] for e in self.fs.ls(base, detail=False)]
        return sorted(n for n in names if self.latest(asset, n) is not None)

    @contextlib.contextmanager
    def publish(
        self,
        asset: str,
        partition: str | None,
        code_version: str,
        config: dict[str, Any],
        upstream: dict[str, str],
    ) -> Iterator[Staging]:
        """Stage a new version; it becomes visible only if the block completes.

        Yields a :class:`Staging` whose ``dir`` is a local directory to write files into and
        whose ``counts`` the caller fills in. If the version already exists, ``staging.existing``
        is set and nothing is written: callers check it first and skip their work.
        """
        version = compute_version(code_version, config, upstream)
        existing = self.find(asset, partition, version)
        staging = Staging(version=version, existing=existing)
        if existing is not None:
            yield staging
            return
        partition_key = partition or UNPARTITIONED
        final_dir = self.version_dir(asset, partition, version)
        if self.is_local:
            parent = Path(self.partition_dir(asset, partition))
            parent.mkdir(parents=True, exist_ok=True)
            staging.dir = Path(tempfile.mkdtemp(prefix=f".staging-{version}-", dir=parent))
        else:
            staging.dir = Path(tempfile.mkdtemp(prefix=f"lmforge-{asset}-"))
        try:
            yield staging
            manifest = Manifest(
                asset=asset,
                partition=partition_key,
                version=version,
                code_version=code_version,
                config=config,
                upstream=upstream,
                files=_describe_files(staging.dir),
                counts=staging.counts,
                created_at=datetime.now(UTC).isoformat(),
                path=final_dir,
            )
            (staging.dir / MANIFEST_NAME).write_text(manifest.to_json())
            self._move_into_place(staging.dir, final_dir)
            self._write_latest(asset, partition, version)
            staging.manifest = manifest
        finally:
            if staging.dir.exists():
                shutil.rmtree(staging.dir, ignore_errors=True)

    def _move_into_place(self, staged: Path, final_dir: str) -> None:
        if self.is_local:
            if os.path.exists(final_dir):
                # Another run published the same version first; identical by construction.
                return
            os.rename(staged, final_dir)
            return
        for path in sorted(staged.rglob("*")):
            if path.is_file() and path.name != MANIFEST_NAME:
                self.fs.put_file(str(path), f"{final_dir}/{path.relative_to(staged).as_posix()}")
        self.fs.put_file(str(staged / MANIFEST_NAME), f"{final_dir}/{MANIFEST_NAME}")

    def _write_latest(self, asset: str, partition: str | None, version: str) -> None:
        pointer = f"{self.partition_dir(asset, partition)}/{LATEST_NAME}"
        if self.is_local:
            tmp = f"{pointer}.{uuid.uuid4().hex}.tmp"
            Path(tmp).write_text(version + "\n")
            os.replace(tmp, pointer)
        else:
            with self.fs.open(pointer, "w") as handle:
                handle.write(version + "\n")

    def mark_latest(self, manifest: Manifest) -> None:
        """Point LATEST at an existing version (a re-run that reused it)."""
        partition = None if manifest.partition == UNPARTITIONED else manifest.partition
        self._write_latest(manifest.asset, partition, manifest.version)

    def verify(self, manifest: Manifest) -> list[str]:
        """Re-hash every file of a version; return the relative paths that differ."""
        bad = []
        for relpath, info in sorted(manifest.files.items()):
            location = manifest.file_path(relpath)
            if not self.fs.exists(location):
                bad.append(relpath)
                continue
            digest = hashlib.sha256()
            with self.fs.open(location, "rb") as handle:
                while chunk := handle.read(_HASH_CHUNK):
                    digest.update(chunk)
            if digest.hexdigest() != info["sha256"]:
                bad.append(relpath)
        return bad


@dataclass
class Staging:
    """A version being written: its target version id and a local directory to fill."""

    version: str
    existing: Manifest | None = None
    dir: Path = Path()
    counts: dict[str, Any] = field(default_factory=dict)
    manifest: Manifest | None = None

    @property
    def result(self) -> Manifest:
        """The published manifest (new or reused)."""
        manifest = self.manifest or self.existing
        if manifest is None:
            raise RuntimeError(f"version {self.version} was not published")
        return manifest


def _describe_files(directory: Path) -> dict[str, dict[str, Any]]:
    files = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.name != MANIFEST_NAME:
            files[path.relative_to(directory).as_posix()] = {
                "sha256": sha256_file(path),
                "size": path.stat().st_size,
            }
    return files
