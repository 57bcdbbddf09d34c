"""`python -m bench`: DynamoDB calls and request units per operation (by AWS's billing rules), then
cold starts against a bare boto3 function."""

from __future__ import annotations

from bench import calls, cold_start
from bench.environment import local_table


def main() -> None:
    with local_table() as endpoint:
        calls.report(endpoint)
        cold_start.report(endpoint)


if __name__ == "__main__":
    main()
