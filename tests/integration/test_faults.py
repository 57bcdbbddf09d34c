"""Faults injected under earn, redeem and return (reversal), at the botocore level: whatever
fails, the caller gets a clear answer (never a `500`, never a success that did not happen), and
its retry with the same key yields exactly one effect (issues #6, #7; SPEC §4 invariants 3, 7).

The faults are injected on the store's one botocore client (`loyalty.store.client.dynamodb()`)
through its events, below botocore's retry layer where botocore would see them:

- at `before-send`, a fake DynamoDB error answers an HTTP attempt: botocore's standard retry
  mode sees it and retries (3 attempts, `TableItem.Meta.max_retry_attempts = 2`); "every attempt"
  means the error left after botocore's retries. The test counts the HTTP attempts to prove it.
- at `before-send`, the request is really sent to DynamoDB Local (the transaction commits), then
  the attempt fails with a `ReadTimeoutError`: the response was lost. Botocore re-sends the same
  request, with the same `ClientRequestToken` (botocore generates one per call): DynamoDB does not
  apply it twice.
- at `after-call`, once the call has returned (committed, after any retries), an error as the
  caller of botocore would see it: a timeout, a closed connection, or `LambdaKilled`, which
  escapes the handler as Lambda's end of the process would.

Every comparison reads all the member's items (Query on `MEMBER#<id>`, plus the purchase guards)
and compares them with what one clean call produced on a twin member, ids and clocks aside.
Botocore's backoff is set to zero and its retry quota left unbounded while the faults run: the
quota (500 units, 5 per throttled retry) is process-wide and would otherwise run dry for the
tests that follow.

A Lambda instance serves one request at a time, and Powertools keeps the current event on the
resolver, so the handlers are not meant to run in threads: the concurrent test drives the
store's `earn` and `redeem` from threads, where the retry loop and the idempotency live; the
other tests call the real handlers.
"""

from __future__ import annotations

import json
import random
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from botocore.retries.quota import RetryQuota
from botocore.retries.standard import ExponentialBackoff
from pynamodb.exceptions import PynamoDBException

from devtools.identity import Identity
from loyalty.domain.earning import Purchase
from loyalty.domain.errors import ConcurrentUpdate, Unavailable
from loyalty.domain.ledger import Actor
from loyalty.domain.rules import default_rules
from loyalty.settings import settings
from loyalty.store import keys, points
from loyalty.store.client import dynamodb
from tests.integration.conftest import PARTNER, ROOT, Api, ApiResponse

pytestmark = pytest.mark.dynamodb

WRITE = frozenset({"TransactWriteItems"})
READS = frozenset({"BatchGetItem", "Query", "GetItem"})
BOTOCORE_ATTEMPTS = 3  # TableItem.Meta.max_retry_attempts + 1
OCCURRED_AT = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0).isoformat()
ERROR_TYPE = "com.amazonaws.dynamodb.v20120810#"


class LambdaKilled(BaseException):
    """The process ends (Lambda's timeout, out of memory): no handler of the code catches it."""


# ---- the injector


@dataclass
class Fault:
    """One kind of fault on some operations: `calls` API calls hit (None: every call), each with
    probability `chance`. `stage` is where it strikes:

    - `throttle`, `throughput`, `conflict`, `read-timeout`: every HTTP attempt of a call hit gets
      that error instead of DynamoDB's answer (botocore retries the first three, not a conflict);
    - `lost-once`, `lost-always`: the attempt reaches DynamoDB, then its response is lost to a read
      timeout (the first attempt of the call only, or every attempt);
    - `timeout-after`, `closed-after`, `killed-after`: after the call returned;
    - `killed-before`: before the call is made.
    """

    stage: str
    operations: frozenset[str]
    calls: int | None = 1
    chance: float = 1.0


@dataclass
class Injector:
    """Faults on the store's botocore client, with counts of what was injected and re-sent."""

    client: Any
    seed: int = 0
    faults: list[Fault] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)
    sends: Counter[str] = field(default_factory=Counter)  # HTTP attempts, per operation
    calls: Counter[str] = field(default_factory=Counter)  # API calls, per operation
    tokens: list[str] = field(default_factory=list)  # ClientRequestToken of each transaction sent

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.random = random.Random(self.seed)
        self.local = threading.local()

    def arm(self, *faults: Fault) -> None:
        """Inject these faults from now on (copies: a fault's count of calls is used up here)."""
        with self.lock:
            self.faults = [replace(fault) for fault in faults]

    def disarm(self) -> None:
        self.arm()

    def _hit(self, operation: str, stages: set[str]) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.stage not in stages or operation not in fault.operations:
                    continue
                if fault.calls == 0 or self.random.random() >= fault.chance:
                    continue
                if fault.calls is not None:
                    fault.calls -= 1
                return fault
        return None

    def _count(self, stage: str) -> None:
        with self.lock:
            self.injected[stage] += 1

    # botocore's events

    def before_call(self, model: Any, **_: Any) -> None:
        operation = model.name
        with self.lock:
            self.calls[operation] += 1
        self.local.attempt = 0
        send_stages = {"throttle", "throughput", "conflict", "read-timeout", "lost-once", "lost-always"}
        self.local.fault = self._hit(operation, send_stages)
        self.local.after = self._hit(operation, {"timeout-after", "closed-after", "killed-after"})
        if self._hit(operation, {"killed-before"}) is not None:
            self._count("killed-before")
            raise LambdaKilled(f"killed before {operation}")

    def before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        target = request.headers.get("X-Amz-Target", "")
        operation = (target.decode() if isinstance(target, bytes) else target).rpartition(".")[2]
        with self.lock:
            self.sends[operation] += 1
        body = json.loads(request.body or b"{}")
        if operation == "TransactWriteItems":
            with self.lock:
                self.tokens.append(body.get("ClientRequestToken", ""))
        fault: Fault | None = getattr(self.local, "fault", None)
        self.local.attempt = getattr(self.local, "attempt", 0) + 1
        if fault is None:
            return None
        self._count(fault.stage)
        if fault.stage == "throttle":
            return fake_error(400, "ThrottlingException", "Rate of requests exceeds the allowed throughput.")
        if fault.stage == "throughput":
            return fake_error(
                400,
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded.",
            )
        if fault.stage == "conflict":
            reasons = [{"Code": "None"} for _ in body.get("TransactItems", [])]
            reasons[0] = {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
            return fake_error(
                400,
                "TransactionCanceledException",
                "Transaction cancelled, please refer cancellation reasons for specific reasons",
                CancellationReasons=reasons,
            )
        if fault.stage == "read-timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        # lost-once / lost-always: DynamoDB gets the request, the caller never gets the answer
        if fault.stage == "lost-once" and self.local.attempt > 1:
            with self.lock:
                self.injected[fault.stage] -= 1
            return None
        self.client._endpoint.http_session.send(request)
        raise ReadTimeoutError(endpoint_url=request.url)

    def after_call(self, model: Any, **_: Any) -> None:
        fault: Fault | None = getattr(self.local, "after", None)
        self.local.after = None
        if fault is None:
            return
        self._count(fault.stage)
        if fault.stage == "timeout-after":
            raise ReadTimeoutError(endpoint_url="https://dynamodb")
        if fault.stage == "closed-after":
            raise ConnectionClosedError(endpoint_url="https://dynamodb")
        raise LambdaKilled(f"killed after {model.name} returned")

    def retries_by_botocore(self, operation: str) -> int:
        return self.sends[operation] - self.calls[operation]


class _Body:
    def __init__(self, content: bytes) -> None:
        self.content = content

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.content


def fake_error(status: int, code: str, message: str, **fields: Any) -> AWSResponse:
    """An error response as DynamoDB writes it (JSON 1.0, `__type` naming the error)."""
    content = json.dumps({"__type": ERROR_TYPE + code, "message": message, **fields}).encode()
    headers = {"x-amzn-RequestId": uuid.uuid4().hex, "Content-Type": "application/x-amz-json-1.0"}
    return AWSResponse("https://dynamodb", status, headers, _Body(content))


@pytest.fixture
def faults(dynamodb_local: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Injector]:
    """An injector hooked on the store's client for one test, with botocore's backoff at zero."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)
    monkeypatch.setattr(RetryQuota, "acquire", lambda self, amount: True)
    client = dynamodb()
    injector = Injector(client)
    events = client.meta.events
    events.register_first("before-call.dynamodb", injector.before_call, unique_id="faults-before-call")
    events.register_first("before-send.dynamodb", injector.before_send, unique_id="faults-before-send")
    events.register_first("after-call.dynamodb", injector.after_call, unique_id="faults-after-call")
    yield injector
    events.unregister("before-call.dynamodb", unique_id="faults-before-call")
    events.unregister("before-send.dynamodb", unique_id="faults-before-send")
    events.unregister("after-call.dynamodb", unique_id="faults-after-call")


# ---- the member's items, ids and clocks aside

# Attributes that differ between two runs of the same movement: ids, clocks, and what hashes them.
VARYING = {"entryId", "recordedAt", "createdAt", "lastActivityAt", "enrolledAt", "updatedAt", "ttl"}
VARYING |= {"gsi1pk", "requestHash", "entry_id", "redemption_id"}


def normalised(value: Any, names: dict[str, str]) -> Any:
    """`value` with the names given replaced by placeholders, varying attributes masked, and the
    results stored as JSON text read as JSON."""
    if isinstance(value, dict):
        out = {key: "*" if key in VARYING else normalised(item, names) for key, item in value.items()}
        if out.get("itemType") == "ledger" and out.get("type") in ("redeem", "reversal"):
            out["occurredAt"] = "*"  # a redemption or a return happens when it is made
        return out
    if isinstance(value, list):
        return [normalised(item, names) for item in value]
    if isinstance(value, str):
        if value.startswith("{"):
            return normalised(json.loads(value), names)
        for name, placeholder in names.items():
            value = value.replace(name, placeholder)
        return re.sub(r"led_[0-9A-Z]{26}", "led_*", value)
    return value


@dataclass
class Member:
    """A member of one test, and how to read every item it has (and its purchases' guards)."""

    id: str
    api: Api
    table: Any
    transaction_ids: list[str] = field(default_factory=list)

    def items(self) -> list[dict[str, Any]]:
        items = self.table.query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": keys.member_pk(self.id)},
            ConsistentRead=True,
        )["Items"]
        guards = [
            self.table.get_item(
                Key={"pk": keys.purchase_pk(tx), "sk": keys.PURCHASE}, ConsistentRead=True
            ).get("Item")
            for tx in self.transaction_ids
        ]
        return sorted(items, key=lambda item: item["sk"]) + [guard for guard in guards if guard]

    def state(self) -> Any:
        """Every item, comparable with a twin's."""
        return normalised(self.items(), {self.id: "<member>"})

    def ledger(self) -> list[dict[str, Any]]:
        return [item for item in self.items() if item["sk"].startswith("LEDGER#")]

    def earn(self, tx: str, amount: str = "40.00") -> ApiResponse:
        if tx not in self.transaction_ids:
            self.transaction_ids.append(tx)
        return self.api.earn(self.id, transactionId=tx, amount=amount, occurredAt=OCCURRED_AT)

    def redeem(self, points_: int, key: str) -> ApiResponse:
        return self.api.redeem(self.id, points_, key=key)

    def reverse(self, amount: str, key: str) -> ApiResponse:
        return self.api.call(
            "POST",
            f"/members/{self.id}/earn/tx-{self.id}/reversal",
            identity=PARTNER,
            body={"amount": amount},
            headers={"idempotency-key": key},
        )


@pytest.fixture
def new_member(api: Api, table: Any) -> Callable[[], Member]:
    def make() -> Member:
        member = Member(f"m-{uuid.uuid4().hex[:12]}", api, table)
        assert api.enrol(member.id).status == 201
        return member

    return make


# ---- one fault, then the caller's retry


@dataclass(frozen=True)
class Case:
    """A fault, what the caller gets first, and whether the table changed before the retry."""

    name: str
    fault: Fault
    status: int
    code: str | None
    committed: bool
    crash: bool = False

    def __str__(self) -> str:
        return self.name


BUSY = (503, "service_unavailable")
CASES = [
    # throttling left after botocore's retries, on the reads and on the transaction
    Case("throttled reads", Fault("throttle", READS, calls=None), *BUSY, committed=False),
    Case("throughput exceeded on reads", Fault("throughput", READS, calls=None), *BUSY, committed=False),
    Case("throttled transaction", Fault("throttle", WRITE, calls=None), *BUSY, committed=False),
    Case("throughput exceeded on the transaction", Fault("throughput", WRITE), *BUSY, committed=False),
    Case("a read timing out", Fault("read-timeout", READS, calls=None), *BUSY, committed=False),
    # TransactionConflict cancellations: once (the engine reads again and succeeds), always
    Case("one transaction conflict", Fault("conflict", WRITE), 201, None, committed=True),
    Case(
        "transaction conflicts without end",
        Fault("conflict", WRITE, calls=None),
        409,
        "concurrent_update",
        committed=False,
    ),
    # the transaction committed, its response lost
    Case("a response lost once (botocore re-sends)", Fault("lost-once", WRITE), 201, None, committed=True),
    Case("every response lost", Fault("lost-always", WRITE), *BUSY, committed=True),
    Case("a timeout after the commit", Fault("timeout-after", WRITE), *BUSY, committed=True),
    Case("a connection closed after the commit", Fault("closed-after", WRITE), *BUSY, committed=True),
    # the process dies
    Case("a crash after the commit", Fault("killed-after", WRITE), 0, None, committed=True, crash=True),
    Case("a crash before the commit", Fault("killed-before", WRITE), 0, None, committed=False, crash=True),
]


def call_with(injector: Injector, case: Case, call: Callable[[], ApiResponse]) -> ApiResponse | None:
    """`call` with the case's fault armed (counting its calls alone); None when the process died."""
    injector.calls.clear()
    injector.sends.clear()
    injector.arm(case.fault)
    try:
        if case.crash:
            with pytest.raises(LambdaKilled):
                call()
            return None
        return call()
    finally:
        injector.disarm()


def assert_first_answer(case: Case, first: ApiResponse | None) -> None:
    if case.crash:
        assert first is None
        return
    assert first is not None
    assert (first.status, first.error_code) == (case.status, case.code), first.body
    if first.status == 503:
        assert first.headers.get("Retry-After") == "1"
    assert first.status != 500


def assert_botocore_saw_it(injector: Injector, case: Case) -> None:
    """Errors botocore retries were sent BOTOCORE_ATTEMPTS times per call; the others once."""
    retried = case.fault.stage in {"throttle", "throughput", "read-timeout", "lost-always"}
    for operation in case.fault.operations & set(injector.calls):
        if retried:
            assert injector.sends[operation] == BOTOCORE_ATTEMPTS * injector.calls[operation], operation
        elif case.fault.stage == "lost-once":
            assert injector.retries_by_botocore(operation) == 1
    if case.fault.stage == "conflict" and case.fault.calls is None:
        assert injector.calls["TransactWriteItems"] == settings().max_attempts


@pytest.mark.parametrize("case", CASES, ids=str)
def test_an_earn_hit_by_a_fault_then_retried_with_the_same_transaction_id_is_credited_once(
    case: Case, faults: Injector, new_member: Callable[[], Member]
) -> None:
    # Given two twin members, one of which earns without faults
    clean, member = new_member(), new_member()
    assert clean.earn(f"tx-{clean.id}").status == 201
    before = member.state()

    # When the other's earn meets the fault
    first = call_with(faults, case, lambda: member.earn(f"tx-{member.id}"))

    # Then the caller gets a clear answer, and the table changed only if the earn committed
    assert_first_answer(case, first)
    assert_botocore_saw_it(faults, case)
    assert (member.state() != before) == case.committed

    # And the partner's retry with the same transactionId leaves exactly what one clean earn leaves
    retry = member.earn(f"tx-{member.id}")
    assert retry.status == 201, retry.body
    assert (retry.headers.get("Idempotent-Replayed") == "true") == case.committed
    if first is not None and first.status == 201:
        assert retry.body == first.body
    assert member.state() == clean.state()
    (entry,) = member.ledger()
    assert retry.body["entryId"] == entry["entryId"]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_redemption_hit_by_a_fault_then_retried_with_the_same_key_is_made_once(
    case: Case, faults: Injector, new_member: Callable[[], Member]
) -> None:
    # Given two twin members with 40 points, one of which redeems 15 without faults
    clean, member = new_member(), new_member()
    for twin in (clean, member):
        assert twin.earn(f"tx-{twin.id}").status == 201
    assert clean.redeem(15, key="gift").status == 201
    before = member.state()

    # When the other's redemption meets the fault
    first = call_with(faults, case, lambda: member.redeem(15, key="gift"))

    # Then the caller gets a clear answer, and the table changed only if the redemption committed
    assert_first_answer(case, first)
    assert_botocore_saw_it(faults, case)
    assert (member.state() != before) == case.committed

    # And the retry with the same Idempotency-Key leaves exactly what one clean redemption leaves
    retry = member.redeem(15, key="gift")
    assert retry.status == 201, retry.body
    assert (retry.headers.get("Idempotent-Replayed") == "true") == case.committed
    if first is not None and first.status == 201:
        assert retry.body == first.body
    assert member.state() == clean.state()
    redemptions = [entry for entry in member.ledger() if entry["type"] == "redeem"]
    assert [entry["entryId"] for entry in redemptions] == [retry.body["redemptionId"]]
    assert member.api.balance(member.id).body["available"] == 25


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_return_hit_by_a_fault_then_retried_with_the_same_key_is_made_once(
    case: Case, faults: Injector, new_member: Callable[[], Member]
) -> None:
    # Given two twin members who earned 40 points and spent 30, one of which returns half the
    # purchase without faults (20 points: 10 from its lot, 10 owed)
    clean, member = new_member(), new_member()
    for twin in (clean, member):
        assert twin.earn(f"tx-{twin.id}").status == 201
        assert twin.redeem(30, key="spend").status == 201
    assert clean.reverse("20.00", key="return").status == 201
    before = member.state()

    # When the other's return meets the fault
    first = call_with(faults, case, lambda: member.reverse("20.00", key="return"))

    # Then the caller gets a clear answer, and the table changed only if the return committed
    assert_first_answer(case, first)
    assert_botocore_saw_it(faults, case)
    assert (member.state() != before) == case.committed

    # And the partner's retry with the same key leaves exactly what one clean return leaves
    retry = member.reverse("20.00", key="return")
    assert retry.status == 201, retry.body
    assert (retry.headers.get("Idempotent-Replayed") == "true") == case.committed
    if first is not None and first.status == 201:
        assert retry.body == first.body
    assert member.state() == clean.state()
    returns = [entry for entry in member.ledger() if entry["type"] == "reversal"]
    assert [entry["entryId"] for entry in returns] == [retry.body["reversalId"]]
    assert (retry.body["taken"], retry.body["owedAdded"], retry.body["balance"]) == (10, 10, 0)


def test_botocore_resends_a_transaction_with_the_token_of_its_first_attempt(
    faults: Injector, new_member: Callable[[], Member]
) -> None:
    # Given a transaction whose first response is lost after it committed
    member = new_member()
    faults.tokens.clear()
    faults.arm(Fault("lost-once", WRITE))

    # When botocore re-sends it
    assert member.earn(f"tx-{member.id}").status == 201

    # Then both attempts carried the same ClientRequestToken: DynamoDB applied it once
    assert len(faults.tokens) == 2
    assert faults.tokens[0] and faults.tokens[0] == faults.tokens[1]
    assert len(member.ledger()) == 1


# ---- many threads, the same key, conflicts injected


def test_threads_retrying_the_same_key_under_injected_conflicts_make_one_movement_each(
    faults: Injector, new_member: Callable[[], Member]
) -> None:
    # Given a member, and transactions that conflict (the first two, then a third of the time) or
    # lose their response
    member = new_member()
    faults.arm(
        Fault("conflict", WRITE, calls=2),  # the first two for sure: few transactions are sent
        Fault("conflict", WRITE, calls=None, chance=0.3),
        Fault("timeout-after", WRITE, calls=None, chance=0.15),
    )
    purchase = Purchase(
        amount=Decimal("60.00"),
        currency="EUR",
        occurred_at=datetime.fromisoformat(OCCURRED_AT),
        channel="store",
        category=None,
    )
    partner = Actor("partner", "pos-test")
    rules = default_rules()
    retries = Counter[str]()

    def until_done(name: str, call: Callable[[], Any]) -> Any:
        for _ in range(50):
            try:
                return call()
            except (ConcurrentUpdate, Unavailable, PynamoDBException):
                retries[name] += 1  # what the caller sees as 409 concurrent_update or 503: retry
        raise AssertionError(f"{name} never got through")

    def earn() -> Any:
        return until_done(
            "earn",
            lambda: points.earn(
                member.id, f"tx-{member.id}", purchase, actor=partner, rules=rules, now=datetime.now(UTC)
            ),
        )

    def redeem() -> Any:
        return until_done(
            "redeem",
            lambda: points.redeem(
                member.id,
                25,
                idempotency_key="same",
                actor=Actor("member", member.id),
                rules=rules,
                now=datetime.now(UTC),
            ),
        )

    # When 6 threads report the same purchase, then 6 threads redeem with the same key, retrying
    earned = run_together(earn, 6)
    redeemed = run_together(redeem, 6)
    faults.disarm()

    # Then each movement happened once, and every thread got its result
    member.transaction_ids.append(f"tx-{member.id}")
    assert len({result.entry_id for result in earned}) == 1
    assert len({result.redemption_id for result in redeemed}) == 1
    assert [entry["type"] for entry in member.ledger()] == ["earn", "redeem"]
    assert member.api.balance(member.id).body["available"] == 60 - 25
    assert faults.injected["conflict"] > 0


def run_together(call: Callable[[], Any], threads: int) -> list[Any]:
    """`call` in `threads` threads released at once; their results, or the first error raised."""
    start = threading.Barrier(threads)

    def work() -> Any:
        start.wait()
        return call()

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(work) for _ in range(threads)]
        return [future.result() for future in futures]


# ---- a seeded schedule of faults over many earns and redemptions


SCHEDULE = [
    (None, 8),
    (Fault("throttle", READS, calls=None), 1),
    (Fault("throughput", WRITE, calls=None), 1),
    (Fault("read-timeout", READS, calls=None), 1),
    (Fault("conflict", WRITE), 2),
    (Fault("conflict", WRITE, calls=None), 1),
    (Fault("lost-once", WRITE), 2),
    (Fault("lost-always", WRITE), 1),
    (Fault("timeout-after", WRITE), 2),
    (Fault("closed-after", WRITE), 1),
    (Fault("killed-after", WRITE), 2),
    (Fault("killed-before", WRITE), 1),
]
OPERATIONS = 80
SEED = 20261125
REPORT = ROOT / ".pytest_cache" / "loyalty-faults.json"


def request_key(entry: dict[str, Any]) -> str:
    """The caller's key of a ledger entry: the purchase's transactionId, or the Idempotency-Key."""
    details = entry["details"]
    return str(details.get("transactionId") or details.get("idempotencyKey"))


@dataclass
class Request:
    """One earn or redemption, by its key, and the caller's view of it."""

    member: Member
    kind: str  # earn, redeem
    key: str
    amount: int
    answer: ApiResponse | None = None
    tries: int = 0

    def send(self) -> ApiResponse:
        if self.kind == "earn":
            return self.member.earn(self.key, amount=f"{self.amount}.00")
        return self.member.redeem(self.amount, key=self.key)

    @property
    def done(self) -> bool:
        """Answered for good: a success, or a refusal that is not 'retry'."""
        return self.answer is not None and self.answer.status in (201, 409) and not self.retry_later

    @property
    def retry_later(self) -> bool:
        return self.answer is not None and self.answer.error_code == "concurrent_update"


def test_a_seeded_schedule_of_faults_never_loses_or_repeats_a_movement(
    faults: Injector, new_member: Callable[[], Member], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two members, and a seeded schedule of faults
    rng = random.Random(SEED)
    members = [new_member(), new_member()]
    kinds, weights = zip(*SCHEDULE, strict=True)
    pending: list[Request] = []
    requests: list[Request] = []
    caller_retries = 0

    def attempt(request: Request) -> None:
        fault = rng.choices(kinds, weights)[0]
        faults.arm(*([fault] if fault else []))
        request.tries += 1
        try:
            request.answer = request.send()
        except LambdaKilled:
            request.answer = None
        finally:
            faults.disarm()
        if request.answer is not None:
            assert request.answer.status in (201, 409, 503), request.answer.body
            if request.answer.status == 409:
                assert request.answer.error_code in ("insufficient_points", "concurrent_update")
        if not request.done and request not in pending:
            pending.append(request)

    # When earns and redemptions run under the faults, each failure retried with its key, at
    # once or after other requests
    for _ in range(OPERATIONS):
        if pending and rng.random() < 0.5:
            request = pending.pop(rng.randrange(len(pending)))
            caller_retries += 1
        else:
            member = rng.choice(members)
            kind = rng.choice(["earn", "earn", "redeem"])
            amount = rng.randint(5, 60)
            request = Request(member, kind, f"{kind}-{uuid.uuid4().hex[:8]}", amount)
            if kind == "earn":
                request.key = f"tx-{member.id}-{request.key}"
            requests.append(request)
        attempt(request)
    while pending:
        request = pending.pop()
        caller_retries += 1
        attempt(request)
    faults.disarm()

    # Then each success happened exactly once, each refusal not at all, and the totals agree
    lost = duplicated = phantom = 0
    for member in members:
        ledger = member.ledger()
        by_key = Counter(request_key(entry) for entry in ledger)
        entry_ids = {entry["entryId"] for entry in ledger}
        mine = [request for request in requests if request.member is member]
        succeeded = [request for request in mine if request.answer and request.answer.status == 201]
        for request in succeeded:
            body = request.answer.body if request.answer else {}
            lost += by_key[request.key] == 0
            duplicated += by_key[request.key] > 1
            assert (body.get("entryId") or body.get("redemptionId")) in entry_ids
        phantom += sum(1 for key in by_key if key not in {request.key for request in succeeded})
        balance = member.api.balance(member.id).body["available"]
        lots = sum(
            lot["remaining"]
            for lot in member.api.call(
                "GET", f"/members/{member.id}/lots", identity=Identity.member(member.id)
            ).body["lots"]
        )
        earned = sum(request.amount for request in succeeded if request.kind == "earn")
        spent = sum(request.amount for request in succeeded if request.kind == "redeem")
        assert balance == lots == sum(int(entry["points"]) for entry in ledger) == earned - spent >= 0
    injected = sum(faults.injected.values())
    figures = {
        "faultsInjected": injected,
        "byKind": dict(sorted(faults.injected.items())),
        "requests": len(requests),
        "callerRetries": caller_retries,
        "botocoreResends": sum(faults.sends.values()) - sum(faults.calls.values()),
        "lost": lost,
        "duplicated": duplicated,
        "reportedFailedButMade": phantom,
    }
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    with capsys.disabled():
        kinds_injected = ", ".join(f"{kind} {count}" for kind, count in figures["byKind"].items())
        print(
            f"\nfaults injected: {injected} ({kinds_injected}); requests: {len(requests)}, "
            f"caller retries: {caller_retries}, botocore re-sends: {figures['botocoreResends']}; "
            f"effects lost: {lost}, duplicated: {duplicated}, reported failed but made: {phantom}"
        )
    assert (lost, duplicated, phantom) == (0, 0, 0)
    assert injected >= 30
    assert sum(1 for request in requests if request.answer and request.answer.status == 201) > 20
