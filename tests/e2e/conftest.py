"""A Ray head on loopback for the tests that run datatrove pipelines on a real Ray cluster."""

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

import pytest

HEAD_START_TIMEOUT_S = 120


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
    # Imported here, not at module level: a skip there would skip every e2e test.
    ray = pytest.importorskip("ray", reason="ray is a dev extra: pip install -e '.[dev]'")
    ray_constants = pytest.importorskip("ray._private.ray_constants")
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
