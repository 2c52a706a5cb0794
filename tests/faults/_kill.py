"""Run a child materialization until it reaches a named point, then SIGKILL its process group."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def kill_at_marker(module: str, args: tuple[str, ...], marker: Path, point: str) -> int:
    """Start ``python -m module *args`` in its own session; once it writes ``marker`` (it has
    reached ``point``), SIGKILL the whole group, as when a machine goes away. Returns the
    group id, so callers can wait for any grandchildren to be gone."""
    child = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            if child.poll() is not None:
                pytest.fail(f"child exited before {point}: {child.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"child never reached {point}")
            time.sleep(0.05)
        os.killpg(child.pid, signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        child.stderr.close()
    return child.pid
