"""`python -m bench`: DynamoDB calls per operation, then cold start against a bare boto3 function."""

from __future__ import annotations

from bench import calls, cold_start
from bench.environment import local_table


def main() -> None:
    with local_table() as endpoint:
        calls.report(endpoint)
        cold_start.report(endpoint)


if __name__ == "__main__":
    main()
