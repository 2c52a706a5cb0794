"""The web pipeline on a real Ray cluster: a local head on loopback, joined by address.

The Ray run must write exactly what the local executor writes for the same WARC.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from assets.web_extraction import ExtractionStats, extract_web_documents
from pipelines.executors import ExecutorSettings

ray = pytest.importorskip("ray", reason="ray is a dev extra: pip install -e '.[dev]'")
ray_constants = pytest.importorskip("ray._private.ray_constants")

DOLMA = "commoncrawl/other-webarchives/dolma-sample-0000.warc.gz"
CRAWL = "CC-MAIN-2024-22"
FETCHED_AT = "2024-05-01T00:00:00Z"
HEAD_START_TIMEOUT_S = 120
# Bounds one extraction on the cluster: a stuck Ray task fails the test instead of hanging it.
EXTRACTION_TIMEOUT_S = 180


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ray_cli() -> str:
    """The `ray` script of this interpreter's environment, so the head runs the same packages."""
    beside = Path(sys.executable).parent / "ray"
    found = str(beside) if beside.exists() else shutil.which("ray")
    if found is None:
        pytest.fail("the ray command line is not installed")
    return found


def _kill_session(session_id: int) -> None:
    """SIGKILL every process of the session ``ray start`` leads (what ``ray stop --force`` does,
    but only to this head's processes: ``ray stop`` would end every Ray process on the machine).
    Ray's graceful SIGTERM shutdown takes over 30 s."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            if os.getsid(pid) == session_id:
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


def _wait_for_head(address: str, head: subprocess.Popen, log: Path) -> None:
    """Wait until ``ray start`` reports the node up (it prints this once the GCS and the raylet
    run; with --block it then stays in the foreground)."""
    deadline = time.monotonic() + HEAD_START_TIMEOUT_S
    while "Ray runtime started" not in log.read_text():
        if head.poll() is not None:
            pytest.fail(f"ray start exited with {head.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no Ray head at {address} after {HEAD_START_TIMEOUT_S} s")
        time.sleep(0.5)


@pytest.fixture
def ray_head(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """Address of a Ray head started for this test on 127.0.0.1."""
    # Ray replaces a loopback address with the machine's network address unless clusters are
    # "disabled", which keeps a single-node cluster entirely on 127.0.0.1: set for the head
    # (environment) and for this already imported driver (the constant read at import).
    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
    env = os.environ | {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    # Session files and Unix sockets; pytest's tmp_path is too long for a socket path (107 bytes).
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray"))
    address = f"127.0.0.1:{_free_port()}"
    log = tmp_path / "ray-head.log"
    with log.open("w") as log_file:
        head = subprocess.Popen(
            [
                _ray_cli(),
                "start",
                "--head",
                "--block",
                "--node-ip-address=127.0.0.1",
                f"--port={address.rsplit(':', 1)[1]}",
                "--num-cpus=2",
                # datatrove reserves 2 GB of memory per task by default.
                f"--memory={4 * 1024**3}",
                f"--object-store-memory={100 * 1024**2}",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--temp-dir={ray_tmp}",
            ],
            cwd=tmp_path,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_head(address, head, log)
        yield address
    finally:
        ray.shutdown()
        _kill_session(head.pid)
        head.wait(timeout=30)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _extract(warc: Path, out_dir: Path, executor: ExecutorSettings) -> ExtractionStats:
    return extract_web_documents(
        [warc], out_dir, crawl=CRAWL, fetched_at=FETCHED_AT, executor=executor
    )


def _table(out_dir: Path, name: str) -> list[dict]:
    rows = pq.read_table(out_dir / name).to_pylist()
    return sorted(rows, key=lambda row: row["id"])


@pytest.mark.e2e
# datatrove schedules its Ray tasks with the placement_group option that Ray deprecated.
@pytest.mark.filterwarnings("ignore:placement_group:DeprecationWarning")
@pytest.mark.timeout(EXTRACTION_TIMEOUT_S * 2 + HEAD_START_TIMEOUT_S)
def test_ray_cluster_extracts_the_same_documents_as_the_local_executor(
    ray_head: str, corpus_dir: Path, tmp_path: Path
) -> None:
    warc = corpus_dir / DOLMA
    local = _extract(warc, tmp_path / "local", ExecutorSettings(kind="local", workers=1))
    on_ray = _extract(
        warc, tmp_path / "ray-out", ExecutorSettings(kind="ray", workers=1, ray_address=ray_head)
    )

    # The executor joined the head this test started rather than starting a Ray of its own.
    assert ray.is_initialized()
    assert ray.get_runtime_context().gcs_address == ray_head
    assert (tmp_path / "ray-out" / "logs" / "completions" / "00000").exists()

    assert local.documents_kept > 0 and local.documents_excluded > 0
    assert on_ray.to_dict() == local.to_dict()
    for table in ("documents", "excluded"):
        ray_rows = _table(tmp_path / "ray-out", table)
        assert ray_rows == _table(tmp_path / "local", table), table
