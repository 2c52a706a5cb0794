"""GitHub's REST API layout, served from the sample's ``github/`` folder."""

from __future__ import annotations

import json
import logging
import re
import tarfile
from pathlib import Path
from urllib.parse import urlsplit

from pipelines.mirror_routes import Route, add_raw_tree, file_route, json_route

log = logging.getLogger(__name__)

GITHUB_PREFIX = "/github"
_GITHUB_API = "https://api.github.com"
_TARBALL = re.compile(r"^([^-]+)-(.+)-([0-9a-f]{7,40})\.tar\.gz$")


def add_github(routes: dict[str, Route], gh_dir: Path) -> None:
    if not gh_dir.is_dir():
        return
    add_raw_tree(routes, gh_dir, GITHUB_PREFIX)
    api = f"{GITHUB_PREFIX}/api"
    for path in sorted((gh_dir / "api").glob("*.json")):
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            log.warning("%s is not JSON; served only under its file name", path)
            continue
        if isinstance(body, list):  # an octokit fixture: recorded exchanges
            for exchange in body:
                if (
                    isinstance(exchange, dict)
                    and exchange.get("scope", "").startswith(_GITHUB_API)
                    and exchange.get("method", "").lower() == "get"
                    and exchange.get("status") == 200
                ):
                    routes[api + urlsplit(exchange["path"]).path] = json_route(exchange["response"])
        elif isinstance(body, dict) and str(body.get("url", "")).startswith(_GITHUB_API + "/"):
            rest_path = urlsplit(body["url"]).path
            routes[api + rest_path] = file_route(path)
            parts = rest_path.split("/")
            if "license" in body and "content" in body and parts[1:2] == ["repos"]:
                routes[f"{api}/repos/{parts[2]}/{parts[3]}/license"] = file_route(path)
    # GitHub names tarballs <owner>-<repo>-<sha7>; the sample's owners have no hyphen.
    for path in sorted((gh_dir / "tarball").glob("*.tar.gz")):
        match = _TARBALL.match(path.name)
        if not match:
            continue
        owner, repo, short = match.groups()
        refs = {short}
        try:
            with tarfile.open(path) as tar:
                refs.add(tar.pax_headers.get("comment", short))  # git archive's commit id
        except (OSError, tarfile.TarError) as error:
            log.warning("cannot read %s: %s", path, error)
        for ref in refs:
            routes[f"{api}/repos/{owner}/{repo}/tarball/{ref}"] = file_route(path)
