#!/usr/bin/env python3
"""Publish the support console (issue #10) to a deployed stack: docs/deploy.md, "The support console".

Run by an operator with AWS credentials after `sam deploy`, never in CI:

    python scripts/deploy_console.py --stack-name loyalty-points-prod --region eu-west-3
    # a stack on an existing user pool (ExistingUserPoolId): that pool's console client and sign-in
    python scripts/deploy_console.py --stack-name loyalty-points-prod --region eu-west-3 \\
        --client-id 3example... --sign-in-domain https://auth.example.com

It reads the stack's outputs (ConsoleBucketName, ConsoleDistributionId, ConsoleUrl, ApiUrl,
ConsoleClientId, ConsoleSignInDomain), writes the page's `config.json` from them (the API's URL,
Cognito's hosted sign-in, the console's app client and its callback URL), uploads every file of
`console/` and that `config.json` to the console's bucket, deletes what the bucket holds that
`console/` no longer has, and invalidates the distribution's cache so that agents get the new files.
`--dry-run` prints the config and the files without touching AWS beyond reading the outputs.

Only the standard library and boto3.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

# One list of files and types for the local server and the bucket
from devtools.console import CONSOLE_DIR, CONTENT_TYPES

CONFIG_KEY = "config.json"
SCOPES = "openid email"

# Every file is checked on every load (a 304 when unchanged): the page's ES modules import each
# other by fixed names, so a browser holding some modules of the last upload for minutes could
# mix them with new ones and fail on an import. The files are small; the invalidation after an
# upload clears CloudFront's copies.
NO_CACHE = "no-cache"


class ConsoleDeployError(Exception):
    """The stack or the arguments do not give what publishing needs; the message says what."""


@dataclass(frozen=True)
class Console:
    """Where the console goes and what its config.json says."""

    bucket: str
    distribution_id: str
    url: str
    api_url: str
    client_id: str
    sign_in_domain: str

    def config(self) -> dict[str, Any]:
        return {
            "mode": "cognito",
            "apiUrl": self.api_url.rstrip("/"),
            "cognito": {
                "domain": self.sign_in_domain.rstrip("/"),
                "clientId": self.client_id,
                "redirectUri": self.url,
                "scopes": SCOPES,
            },
        }


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}


def console_from(
    outputs: Mapping[str, str], *, client_id: str | None = None, sign_in_domain: str | None = None
) -> Console:
    """The console of a stack from its outputs; `client_id` and `sign_in_domain` stand in for the
    outputs a stack on an existing user pool does not have (or override them)."""
    needed = ["ConsoleBucketName", "ConsoleDistributionId", "ConsoleUrl", "ApiUrl"]
    missing = [name for name in needed if not outputs.get(name)]
    if missing:
        raise ConsoleDeployError(
            f"the stack has no output {', '.join(missing)}: deploy this version of template.yaml first"
        )
    client = client_id or outputs.get("ConsoleClientId")
    domain = sign_in_domain or outputs.get("ConsoleSignInDomain")
    if not client or not domain:
        raise ConsoleDeployError(
            "the stack uses an existing user pool (no ConsoleClientId or ConsoleSignInDomain output): "
            "give --client-id (that pool's console client) and --sign-in-domain (its hosted sign-in)"
        )
    if not domain.startswith("https://"):
        raise ConsoleDeployError(f"--sign-in-domain {domain!r} must start with https://")
    return Console(
        bucket=outputs["ConsoleBucketName"],
        distribution_id=outputs["ConsoleDistributionId"],
        url=outputs["ConsoleUrl"],
        api_url=outputs["ApiUrl"],
        client_id=client,
        sign_in_domain=domain,
    )


def console_files(directory: Path) -> dict[str, Path]:
    """The files to upload, by key: every file of a known type, no hidden one, no config.json
    (the one uploaded is written from the stack)."""
    files = {}
    for path in sorted(directory.rglob("*")):
        key = path.relative_to(directory).as_posix()
        if (
            path.is_file()
            and path.suffix in CONTENT_TYPES
            and not any(part.startswith(".") for part in key.split("/"))
            and key != CONFIG_KEY
        ):
            files[key] = path
    if "index.html" not in files:
        raise ConsoleDeployError(f"{directory} has no index.html")
    return files


def publish(console: Console, directory: Path, s3: Any, cloudfront: Any, *, out: IO[str]) -> list[str]:
    """Upload the files and the config, delete stale keys, invalidate the cache: the keys uploaded."""
    uploads: dict[str, bytes] = {key: path.read_bytes() for key, path in console_files(directory).items()}
    uploads[CONFIG_KEY] = json.dumps(console.config(), indent=2).encode("utf-8") + b"\n"
    for key, body in uploads.items():
        s3.put_object(
            Bucket=console.bucket,
            Key=key,
            Body=body,
            ContentType=CONTENT_TYPES[Path(key).suffix],
            CacheControl=NO_CACHE,
        )
        out.write(f"uploaded {key}\n")
    stale = [key for key in _keys(s3, console.bucket) if key not in uploads]
    for start in range(0, len(stale), 1000):
        chunk = stale[start : start + 1000]
        s3.delete_objects(
            Bucket=console.bucket, Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True}
        )
    for key in stale:
        out.write(f"deleted {key}\n")
    cloudfront.create_invalidation(
        DistributionId=console.distribution_id,
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": f"{time.time_ns()}"},
    )
    out.write(f"invalidated the cache of {console.distribution_id}\nthe console: {console.url}\n")
    return list(uploads)


def _keys(s3: Any, bucket: str) -> list[str]:
    keys: list[str] = []
    token: str | None = None
    while True:
        page = s3.list_objects_v2(Bucket=bucket, **({"ContinuationToken": token} if token else {}))
        keys += [item["Key"] for item in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return keys
        token = page["NextContinuationToken"]


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack-name", required=True, help="the deployed stack, e.g. loyalty-points-prod")
    parser.add_argument("--region", help="the stack's region (default: the AWS configuration's)")
    parser.add_argument("--client-id", help="the console's app client (a stack on an existing user pool)")
    parser.add_argument("--sign-in-domain", help="https://… of the pool's hosted sign-in (existing pool)")
    parser.add_argument("--console-dir", type=Path, default=CONSOLE_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--dry-run", action="store_true", help="print the config and the files only")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, *, session: Any = None, out: IO[str] = sys.stdout) -> int:
    arguments = _parse(list(sys.argv[1:] if argv is None else argv))
    if session is None:
        import boto3

        session = boto3.session.Session(region_name=arguments.region)
    try:
        outputs = stack_outputs(session.client("cloudformation"), arguments.stack_name)
        console = console_from(
            outputs, client_id=arguments.client_id, sign_in_domain=arguments.sign_in_domain
        )
        if arguments.dry_run:
            out.write(json.dumps(console.config(), indent=2) + "\n")
            for key in console_files(arguments.console_dir):
                out.write(f"would upload {key}\n")
            return 0
        publish(console, arguments.console_dir, session.client("s3"), session.client("cloudfront"), out=out)
    except ConsoleDeployError as problem:
        print(f"deploy_console: {problem}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
