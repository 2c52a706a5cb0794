"""Shared fixtures: the real sample data beside the repository, never copied into it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("LMFORGE_SHARED_DIR", REPO_ROOT.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    path = SHARED_DIR / "corpus"
    if not path.is_dir():
        pytest.fail(f"sample corpus not found at {path}; set LMFORGE_SHARED_DIR")
    return path


@pytest.fixture(scope="session")
def evals_dir() -> Path:
    path = SHARED_DIR / "evals"
    if not path.is_dir():
        pytest.fail(f"evaluation tasks not found at {path}; set LMFORGE_SHARED_DIR")
    return path
