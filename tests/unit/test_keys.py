"""The table's key layout: ranges read exactly the item types they are meant to read."""

from __future__ import annotations

from loyalty.store import keys

MEMBER_ITEMS = {
    "open claims": keys.open_claims_sk(),
    "reminder state": keys.reminder_state_sk(),
    "request record": keys.request_sk("redeem", "k-1"),
    "ledger entry": keys.ledger_sk(1),
    "last ledger entry": keys.ledger_sk(999_999_999_999),
    "profile": keys.profile_sk(),
    "wallet": keys.wallet_sk(),
    "last request": keys.last_request_sk(),
    "first lot page": keys.lot_page_sk("2026-01/2024-01"),
    "never page": keys.lot_page_sk("NEVER/2026-11"),
    "activity page": keys.lot_page_sk("ACTIVITY/2026-11"),
}


def inside(key_range: keys.KeyRange, sort_key: str) -> bool:
    return key_range.first <= sort_key <= key_range.last


def items_in(key_range: keys.KeyRange) -> set[str]:
    return {name for name, sort_key in MEMBER_ITEMS.items() if inside(key_range, sort_key)}


def test_a_members_items_sort_requests_ledger_profile_wallet_last_request_then_pages() -> None:
    # Given every item type of a member's partition
    # When they are sorted by sort key
    order = sorted(MEMBER_ITEMS, key=MEMBER_ITEMS.__getitem__)

    # Then the order is the one docs/design.md describes (pages: dated, ACTIVITY, NEVER)
    assert order == [
        "open claims",
        "reminder state",
        "request record",
        "ledger entry",
        "last ledger entry",
        "profile",
        "wallet",
        "last request",
        "first lot page",
        "activity page",
        "never page",
    ]


def test_the_wallet_range_reads_the_wallet_the_last_request_and_every_page_only() -> None:
    assert items_in(keys.WALLET_RANGE) == {
        "wallet",
        "last request",
        "first lot page",
        "never page",
        "activity page",
    }


def test_the_profile_range_adds_the_profile_and_nothing_else() -> None:
    assert items_in(keys.PROFILE_RANGE) == items_in(keys.WALLET_RANGE) | {"profile"}


def test_the_ledger_range_reads_ledger_entries_and_the_profile_but_no_request_record() -> None:
    assert items_in(keys.LEDGER_AND_PROFILE_RANGE) == {"ledger entry", "last ledger entry", "profile"}
    assert items_in(keys.LEDGER_RANGE) == {"ledger entry", "last ledger entry"}


def test_request_records_fall_in_no_range_that_is_read() -> None:
    record = MEMBER_ITEMS["request record"]
    for key_range in (keys.WALLET_RANGE, keys.PROFILE_RANGE, keys.LEDGER_AND_PROFILE_RANGE):
        assert not inside(key_range, record)


def test_the_count_of_open_claims_falls_in_no_range_that_is_read() -> None:
    count = MEMBER_ITEMS["open claims"]
    for key_range in (
        keys.WALLET_RANGE,
        keys.PROFILE_RANGE,
        keys.LEDGER_AND_PROFILE_RANGE,
        keys.LEDGER_RANGE,
    ):
        assert not inside(key_range, count)


def test_the_reminder_state_falls_in_no_range_that_is_read() -> None:
    state = MEMBER_ITEMS["reminder state"]
    for key_range in (
        keys.WALLET_RANGE,
        keys.PROFILE_RANGE,
        keys.LEDGER_AND_PROFILE_RANGE,
        keys.LEDGER_RANGE,
        keys.wallet_and_due_pages_range("2099-12"),
        keys.bucket_pages_range("ACTIVITY"),
    ):
        assert not inside(key_range, state)


def test_claims_sort_oldest_first_in_their_status_partition() -> None:
    # Given two claims filed a millisecond apart, the later one with the smaller id
    first = keys.claims_status_sk("2026-11-23T10:00:00.000Z", "clm_ZZZZZZZZZZZZZZZZZZZZZZZZZZ")
    second = keys.claims_status_sk("2026-11-23T10:00:00.001Z", "clm_00000000000000000000000000")

    # Then the index sorts them by filing instant, and each status has a partition of its own
    assert first < second
    assert keys.claims_status_pk("pending") == "CLAIMS#pending" != keys.claims_status_pk("approved")


def test_program_wide_items_live_outside_every_member_partition() -> None:
    assert keys.claim_pk("clm_1") == "CLAIM#clm_1" and keys.claim_id_of(keys.claim_pk("clm_1")) == "clm_1"
    assert not keys.claim_pk("x").startswith("MEMBER#") and not keys.purchase_pk("x").startswith("MEMBER#")


def test_ledger_entries_sort_by_sequence() -> None:
    assert keys.ledger_sk(9) < keys.ledger_sk(10) < keys.ledger_sk(123_456)


def test_the_due_bound_includes_a_member_whose_next_expiry_is_exactly_the_as_of_instant() -> None:
    # Given a member whose next expiry is exactly the run's as-of instant
    as_of = "2026-12-31T23:00:00.000Z"
    row = keys.next_expiry_sk(as_of, "m-1")

    # Then the due query (gsi1sk < bound) includes it, and excludes the next millisecond
    assert row < keys.due_upper_bound(as_of)
    assert keys.next_expiry_sk("2026-12-31T23:00:00.001Z", "m-1") > keys.due_upper_bound(as_of)


def test_members_spread_over_every_expiry_shard() -> None:
    shards = {keys.expiry_shard(f"m-{n}", 64) for n in range(5_000)}
    assert len(shards) == 64
    assert keys.expiry_shard("m-1", 64) == keys.expiry_shard("m-1", 64)


def test_the_expiry_read_takes_the_wallet_and_the_dated_pages_due_through_a_month_only() -> None:
    # Given pages of the due month (two months of issue), of the month before and of the month after
    due_range = keys.wallet_and_due_pages_range("2026-11")
    before = keys.lot_page_sk("2026-10/2024-10")
    due = [keys.lot_page_sk("2026-11/2024-11"), keys.lot_page_sk("2026-11/2025-12")]
    after = keys.lot_page_sk("2026-12/2024-12")

    # Then the expiry read holds the wallet, the last request and the pages through that month
    assert inside(due_range, before) and all(inside(due_range, key) for key in due)
    assert not inside(due_range, after)
    assert items_in(keys.wallet_and_due_pages_range("2025-12")) == {"wallet", "last request"}
    # and never a page without a date of its own, a record, a ledger entry or the profile
    assert not inside(keys.wallet_and_due_pages_range("2099-12"), MEMBER_ITEMS["activity page"])
    assert not inside(keys.wallet_and_due_pages_range("2099-12"), MEMBER_ITEMS["never page"])
    assert items_in(keys.wallet_and_due_pages_range("2026-01")) == {
        "wallet",
        "last request",
        "first lot page",
    }


def test_a_bucket_range_reads_the_pages_of_that_bucket_only() -> None:
    assert items_in(keys.bucket_pages_range("ACTIVITY")) == {"activity page"}
    assert items_in(keys.bucket_pages_range("NEVER")) == {"never page"}
    assert items_in(keys.bucket_pages_range("2026-01")) == {"first lot page"}
    assert not inside(keys.bucket_pages_range("2026-01"), keys.lot_page_sk("2026-02/2026-01"))


def test_a_kinds_run_index_is_a_partition_of_its_own_apart_from_every_run_and_member() -> None:
    index = keys.run_index_pk("expiry")
    assert index == "RUNS#expiry" != keys.run_index_pk("reminders")
    # a run id never makes a run's record partition equal to an index's
    assert not index.startswith("RUN#") and not index.startswith("MEMBER#")
    # runs sort by as-of instant, then by run id (start order)
    assert keys.run_index_sk("2028-11-30T23:05:00.000Z", "run_B") < keys.run_index_sk(
        "2028-12-01T23:05:00.000Z", "run_A"
    )
