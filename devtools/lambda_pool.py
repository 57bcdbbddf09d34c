"""Lambda instances for the local mode: each function runs in processes of its own, several at once.

On AWS, concurrent requests to one function run in separate instances (separate processes, each
with its own module state), so they race in DynamoDB. The local mode does the same: a function's
invocations go to a pool of worker processes, started on first use (a cold start) and reused
while warm, up to `instances` at once; one more request waits for a free instance, as a function
at its reserved concurrency would throttle. Nothing is shared between instances but the
environment they were started with: Powertools keeps the current request in class attributes,
so two requests in one process would read each other's event.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import traceback
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from devtools.lambda_runtime import LambdaContext, load_handler

__all__ = ["DEFAULT_INSTANCES", "FunctionFailed", "FunctionPools"]

log = logging.getLogger("devtools.local")

DEFAULT_INSTANCES = 4
"""Instances per function: enough for requests to race as they do on AWS, small for a laptop."""

# A fresh interpreter per instance, as Lambda gives; forking a threaded server is unsafe.
_SPAWN = multiprocessing.get_context("spawn")


class FunctionFailed(Exception):
    """The handler raised, or its instance died: API Gateway would answer 502."""


def _serve(connection: Connection, function: str, code_uri: str, handler: str, root: str) -> None:
    """One instance: import the handler once, then run each event received, one at a time."""
    while True:
        try:
            event = connection.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return  # the local mode stopped
        try:
            entry = load_handler(code_uri, handler, Path(root))
            outcome: tuple[str, Any] = ("ok", entry(event, LambdaContext(function)))
        except FileNotFoundError as missing:
            outcome = ("missing", str(missing))
        except BaseException:  # noqa: BLE001 - as the Lambda runtime, report whatever the handler raised
            outcome = ("failed", traceback.format_exc())
        try:
            connection.send(outcome)
        except (TypeError, ValueError, AttributeError) as problem:  # a result pickle cannot carry
            connection.send(("failed", f"the handler returned a value Lambda cannot serialise: {problem}"))


class _Instance:
    def __init__(self, function: str, code_uri: str, handler: str, root: Path) -> None:
        self.connection, child = _SPAWN.Pipe()
        self.process: BaseProcess = _SPAWN.Process(
            target=_serve,
            args=(child, function, code_uri, handler, str(root)),
            name=f"lambda-{function}",
            daemon=True,
        )
        self.process.start()
        child.close()

    def invoke(self, event: dict[str, Any]) -> Any:
        try:
            self.connection.send(event)
            status, value = self.connection.recv()
        except (EOFError, OSError) as died:
            raise _InstanceDied(f"the instance stopped ({self.process.exitcode})") from died
        if status == "missing":
            raise FileNotFoundError(value)
        if status == "failed":
            raise FunctionFailed(value)
        return value

    def stop(self) -> None:
        self.connection.close()
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=2)


class _InstanceDied(FunctionFailed):
    pass


class _Pool:
    """The instances of one function: the most recently used idle one serves next (it is warm)."""

    def __init__(self, function: str, code_uri: str, handler: str, root: Path, instances: int) -> None:
        self.function, self.code_uri, self.handler, self.root = function, code_uri, handler, root
        self.limit = instances
        self.idle: list[_Instance] = []
        self.started = 0
        self.available = threading.Condition()
        self.closed = False

    def _acquire(self) -> _Instance:
        with self.available:
            while True:
                if self.closed:
                    raise FunctionFailed("the local mode is stopping")
                if self.idle:
                    return self.idle.pop()
                if self.started < self.limit:
                    self.started += 1
                    break
                self.available.wait()
        try:
            return _Instance(self.function, self.code_uri, self.handler, self.root)
        except BaseException:
            self._forget()
            raise

    def _forget(self) -> None:
        with self.available:
            self.started -= 1
            self.available.notify()

    def invoke(self, event: dict[str, Any]) -> Any:
        instance = self._acquire()
        try:
            result = instance.invoke(event)
        except _InstanceDied:
            instance.stop()
            self._forget()
            raise
        except BaseException:
            self._release(instance)
            raise
        self._release(instance)
        return result

    def _release(self, instance: _Instance) -> None:
        with self.available:
            if self.closed:
                instance.stop()
                return
            self.idle.append(instance)
            self.available.notify()

    def close(self) -> None:
        with self.available:
            self.closed = True
            idle, self.idle = self.idle, []
            self.available.notify_all()
        for instance in idle:
            instance.stop()


class FunctionPools:
    """Every function's instances; `invoke` runs one event on a free instance of the function."""

    def __init__(self, root: Path, instances: int = DEFAULT_INSTANCES) -> None:
        if instances < 1:
            raise ValueError("a function needs at least one instance")
        self.root = root
        self.instances = instances
        self._pools: dict[str, _Pool] = {}
        self._guard = threading.Lock()

    def invoke(self, function: str, code_uri: str, handler: str, event: dict[str, Any]) -> Any:
        """The handler's result; `FileNotFoundError` when its file does not exist, `FunctionFailed`
        when it raised (the traceback is the message) or its instance died."""
        with self._guard:
            pool = self._pools.get(function)
            if pool is None:
                pool = self._pools[function] = _Pool(function, code_uri, handler, self.root, self.instances)
        return pool.invoke(event)

    def close(self) -> None:
        with self._guard:
            pools = list(self._pools.values())
        for pool in pools:
            pool.close()
