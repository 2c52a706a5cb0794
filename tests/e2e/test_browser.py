"""The Dagster UI in a real browser: `dagster dev` on loopback, driven by headless Chromium.

Checks the global lineage graph from ``commoncrawl_warcs`` to ``evaluation_report``, then
launches one crawl partition from the asset page's Materialize dialog and waits for the run to
succeed. Screenshots land in tests/e2e/artifacts/ (CI keeps them).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO_ROOT

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is a dev extra")
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")  # Debian's chromium and chromium-driver packages
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).parent / "artifacts"
CRAWL = "CC-MAIN-2024-22"  # the smallest crawl of the sample mirror: one WARC of about 19 KB
# Assets along one path from the crawl to the evaluation, upstream first.
LINEAGE = [
    "commoncrawl_warcs",
    "web_documents",
    "token_shards",
    "model_checkpoint",
    "evaluation_report",
]
SERVER_START_TIMEOUT_S = 180  # dagster dev loads the code location and starts its daemon
UI_TIMEOUT_S = 90
RUN_TIMEOUT_S = 240

ADD_PARTITION = """
mutation ($key: String!) {
  addDynamicPartition(
    repositorySelector: {repositoryName: "__repository__", repositoryLocationName: "lmforge"}
    partitionsDefName: "cc_crawl"
    partitionKey: $key
  ) { __typename ... on PythonError { message } ... on UnauthorizedError { message } }
}
"""
RUNS = """
{ runsOrError { ... on Runs { results { runId status tags { key value } } } } }
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(base: str, query: str, **variables: object) -> dict:
    response = requests.post(
        f"{base}/graphql", json={"query": query, "variables": variables}, timeout=30
    )
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


@pytest.fixture
def dagster_dev(tmp_path: Path) -> Iterator[str]:
    """Base URL of `dagster dev` (webserver and daemon) on a temporary DAGSTER_HOME."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = os.environ | {"DAGSTER_HOME": str(home), "LMFORGE_DATA_ROOT": str(tmp_path / "data")}
    port = _free_port()
    log = tmp_path / "dagster-dev.log"
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dagster",
                "dev",
                "-w",
                "workspace.yaml",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the webserver, daemon, runs
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                if requests.get(f"{base}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dagster dev did not start:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(log, ARTIFACTS / "dagster-dev.log")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("CI"):
            pytest.fail("CI needs Debian's chromium and chromium-driver packages")
        pytest.skip("apt-get install chromium chromium-driver to run the browser test")
    # Selenium Manager would otherwise look for a driver online.
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1920,1200",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: WebDriver, timeout: float = UI_TIMEOUT_S) -> WebDriverWait:
    return WebDriverWait(driver, timeout, ignored_exceptions=[WebDriverException])


def _click(driver: WebDriver, xpath: str) -> None:
    _wait(driver).until(ec.element_to_be_clickable((By.XPATH, xpath))).click()


def _dismiss_welcome_dialog(driver: WebDriver) -> None:
    """A fresh DAGSTER_HOME greets the first visitor with a newsletter dialog."""
    try:
        _click_within(driver, "//button[normalize-space()='Skip']", 10)
    except WebDriverException:
        return


def _click_within(driver: WebDriver, xpath: str, timeout: float) -> None:
    _wait(driver, timeout).until(ec.element_to_be_clickable((By.XPATH, xpath))).click()


def _node_positions(driver: WebDriver) -> dict[str, float]:
    """Horizontal centre of each fully named asset node drawn in the lineage graph."""
    return driver.execute_script(
        """
        const out = {};
        for (const el of document.querySelectorAll('svg foreignObject [class*=assetName]')) {
          const box = el.getBoundingClientRect();
          if (box.width > 0) out[el.textContent.trim()] = box.x + box.width / 2;
        }
        return out;
        """
    )


def _check_lineage_graph(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/asset-groups")
    _dismiss_welcome_dialog(driver)
    # The global graph starts with every group collapsed; expand them from the graph settings.
    # (the graph's own settings button is icon-only; the navigation's "Settings" has text)
    _click(driver, "//button[not(normalize-space()) and .//*[@aria-label='settings']]")
    _click(driver, "//*[@role='menuitem'][contains(., 'Expand all groups')]")
    positions = _wait(driver).until(
        lambda d: found if set(LINEAGE) <= set(found := _node_positions(d)) else None
    )
    # The graph is laid out left to right, upstream first: the path's nodes stand in order.
    xs = [positions[name] for name in LINEAGE]
    assert xs == sorted(xs) and len(set(xs)) == len(xs), positions
    driver.find_element(By.TAG_NAME, "body").click()  # close the settings menu
    driver.save_screenshot(str(ARTIFACTS / "lineage.png"))


def _launch_partition_from_asset_page(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/assets/commoncrawl_warcs")
    _dismiss_welcome_dialog(driver)
    _click(driver, "//button[normalize-space()='Materialize…']")
    dialog = "//div[contains(@class, 'bp5-dialog')]"
    _click(driver, f"{dialog}//*[contains(@class, 'TagSelector_tagSelectorContainer')]")
    _click(driver, f"//*[@role='dialog' or contains(@class, 'popover')]//*[text()='{CRAWL}']")
    # Close the partition picker by clicking the dialog's title (outside it would close both).
    _click(driver, f"{dialog}//*[starts-with(normalize-space(text()), 'Launch runs to')]")
    driver.save_screenshot(str(ARTIFACTS / "launch-dialog.png"))
    _click(driver, f"{dialog}//button[starts-with(normalize-space(), 'Launch')]")


def _wait_for_run(base: str) -> dict:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        runs = _graphql(base, RUNS)["runsOrError"]["results"]
        ours = [run for run in runs if {"key": "dagster/partition", "value": CRAWL} in run["tags"]]
        if ours and ours[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            return ours[0]
        time.sleep(2)
    pytest.fail(f"no finished run of partition {CRAWL} after {RUN_TIMEOUT_S} s")


@pytest.mark.e2e
def test_ui_shows_the_lineage_and_materializes_a_crawl_partition(
    dagster_dev: str, browser: WebDriver
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    added = _graphql(dagster_dev, ADD_PARTITION, key=CRAWL)["addDynamicPartition"]
    assert added["__typename"] == "AddDynamicPartitionSuccess", added

    _check_lineage_graph(browser, dagster_dev)
    _launch_partition_from_asset_page(browser, dagster_dev)
    run = _wait_for_run(dagster_dev)

    browser.get(f"{dagster_dev}/runs/{run['runId']}")
    status = "//*[normalize-space()='Success' or normalize-space()='Failure']"
    _wait(browser).until(ec.presence_of_element_located((By.XPATH, status)))
    browser.save_screenshot(str(ARTIFACTS / "run.png"))
    assert run["status"] == "SUCCESS", run
