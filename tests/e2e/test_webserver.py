"""The Dagster webserver loads the code location from workspace.yaml and lists the graph."""

import os
import socket
import subprocess
import sys
import time

import pytest
import requests

from pipelines.definitions import defs
from tests.conftest import REPO_ROOT

# Every asset of the code location, as Dagster loads it; the UI must list the same set.
EXPECTED_ASSETS = {key.path[-1] for key in defs().resolve_asset_graph().get_all_asset_keys()}
ASSET_QUERY = "{ assetNodes { assetKey { path } groupName description } }"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def webserver(tmp_path):
    port = free_port()
    env = os.environ | {"DAGSTER_HOME": str(tmp_path), "LMFORGE_DATA_ROOT": str(tmp_path / "d")}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    command = [sys.executable, "-m", "dagster_webserver", "-w", "workspace.yaml"]
    process = subprocess.Popen(
        [*command, "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        else:
            pytest.fail("dagster webserver did not start within 120 s")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.e2e
def test_webserver_serves_every_asset_with_group_and_description(webserver):
    deadline = time.monotonic() + 60
    nodes = []
    while time.monotonic() < deadline and not nodes:
        response = requests.post(f"{webserver}/graphql", json={"query": ASSET_QUERY}, timeout=30)
        nodes = response.json().get("data", {}).get("assetNodes") or []
        if not nodes:
            time.sleep(1)
    by_name = {node["assetKey"]["path"][-1]: node for node in nodes}
    assert len(EXPECTED_ASSETS) == 15
    assert set(by_name) == EXPECTED_ASSETS
    assert all(node["description"] for node in nodes)
    assert by_name["commoncrawl_warcs"]["groupName"] == "sources"
    assert by_name["evaluation_report"]["groupName"] == "model"
