"""arXiv's URL layouts, served from the sample's ``arxiv/`` folder."""

from __future__ import annotations

from pathlib import Path

from pipelines.mirror_routes import Route, add_raw_tree

ARXIV_PREFIX = "/arxiv"


def add_arxiv(routes: dict[str, Route], arxiv_dir: Path) -> None:
    add_raw_tree(routes, arxiv_dir, ARXIV_PREFIX)
