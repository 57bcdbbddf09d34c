"""Daemon threads of the local mode that run until stopped (the SQS and stream pollers)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class BackgroundThreads:
    """Threads added by name, started together; `stop()` sets `stopping`, which each target
    watches, and waits for them (5 s each)."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def add(self, name: str, target: Callable[..., None], *args: Any) -> None:
        self.threads.append(threading.Thread(target=target, args=args, name=name, daemon=True))

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=5)
