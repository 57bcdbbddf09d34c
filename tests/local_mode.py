"""The real local mode in a process of its own, for the tests that drive it from outside (the run
and report commands, the smoke script, the support console in a browser)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devtools import REPO_ROOT
from devtools.dynamodb_local import free_port, java_available

STARTED = "demo data:"  # the local mode's console line once its demo members are in


@contextmanager
def running_local_mode(name: str, timeout: float = 90) -> Iterator[tuple[str, Path]]:
    """`python -m devtools.local --in-memory` on a free port, with no AWS variable of the tests'
    environment: its base URL and its console's log (`.pytest_cache/<name>-<port>.log`), until the
    block ends. Skips when Java is missing; fails with the log when it does not start."""
    if not java_available():
        pytest.skip("Java 17+ is not installed: DynamoDB Local cannot run")
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TABLE_NAME"))}
    log = REPO_ROOT / ".pytest_cache" / f"{name}-{port}.log"
    log.parent.mkdir(exist_ok=True)
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "devtools.local", "--port", str(port), "--in-memory"],
            cwd=REPO_ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        while STARTED not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the local mode did not start:\n" + log.read_text(errors="replace"))
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", log
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
