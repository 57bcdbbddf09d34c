"""`python -m bench`: DynamoDB calls and request units per operation (by AWS's billing rules), then
cold starts against a bare boto3 function, then the cost per million operations on AWS
(`bench.cost`), then the expiry and reminder runs over 100,000 lots (`bench.expiry_scale`; its 10x
table is `make bench-scale`), then the liability figures' items and cost (`bench.liability`)."""

from __future__ import annotations

from bench import calls, cold_start, cost, expiry_scale, liability
from bench.environment import local_table


def main() -> None:
    with local_table() as endpoint:
        measured = calls.report(endpoint)
        cold_start.report(endpoint)
        cost.report(endpoint, measured)
    # A DynamoDB Local of its own (in a child process), once the one above is stopped.
    expiry_scale.report()
    liability.report()


if __name__ == "__main__":
    main()
