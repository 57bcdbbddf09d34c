"""The template's S3 buckets in the local mode: created in moto, and mirrored to a folder so that
what the functions wrote there (the monthly liability report) can be opened as files."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("devtools.buckets")


def bucket_name(logical_id: str) -> str:
    """S3 names are lower-case: `ReportsBucket` is `loyalty-local-reportsbucket`."""
    return f"loyalty-local-{logical_id.lower()}"


def create_buckets(
    template: Mapping[str, Any], client: Any, region: str, values: dict[str, str]
) -> list[str]:
    """Create every `AWS::S3::Bucket` of the template; what `Ref` and `GetAtt .Arn` give, in `values`."""
    names = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::S3::Bucket":
            continue
        name = bucket_name(logical_id)
        location = (
            {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=name, **location)
        values[logical_id] = name
        values[f"{logical_id}.Arn"] = f"arn:aws:s3:::{name}"
        names.append(name)
    return names


class BucketMirror:
    """Copies each object of the buckets to `directory/<key>` when it is new or changed."""

    def __init__(self, client: Any, buckets: list[str], directory: Path) -> None:
        self.client = client
        self.buckets = buckets
        self.directory = directory
        self.seen: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def collect(self) -> list[str]:
        """Every file mirrored so far (paths), after copying what is new."""
        with self._lock:
            for bucket in self.buckets:
                for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                    for listed in page.get("Contents", []):
                        self._copy(bucket, listed["Key"], listed["ETag"])
            return sorted(str(self._path(key)) for _, key in self.seen)

    def _path(self, key: str) -> Path:
        path = (self.directory / key).resolve()
        if not path.is_relative_to(self.directory.resolve()):
            raise ValueError(f"object key {key!r} leaves {self.directory}")
        return path

    def _copy(self, bucket: str, key: str, etag: str) -> None:
        if self.seen.get((bucket, key)) == etag:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.client.get_object(Bucket=bucket, Key=key)["Body"].read())
        self.seen[(bucket, key)] = etag
        log.info("s3://%s/%s saved in %s", bucket, key, path)
