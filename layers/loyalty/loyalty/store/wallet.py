"""Reading a member's points: one Query of the wallet range returns the wallet, the member's last
request and the first lot pages in spend order (docs/design.md, "Access patterns").

The read stops after a few pages (`pages`), so what it costs does not grow with the member's
lots; a step that needs more (a large redemption) reads on from where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from loyalty.domain.errors import MemberNotFound
from loyalty.domain.lots import Lot
from loyalty.domain.wallet import (
    ACTIVITY_BUCKET,
    LotPage,
    NeedMorePages,
    Snapshot,
    TransferSent,
    WalletState,
    bucket_of_page,
    due_points,
    follows_wallet_expiry,
    kind_of_lot,
)
from loyalty.store import keys
from loyalty.store.models import (
    LotPageItem,
    ProfileItem,
    RequestRecordItem,
    TableItem,
    WalletItem,
    bind,
)
from loyalty.store.records import is_live

# Pages a movement's first read takes: a daily shopper's page holds ~31 lots (~1.5 KB), so the
# wallet, the last request and 4 pages stay within 16 KB: 4 RRU strongly consistent, 2 eventually.
PAGES_PER_READ = 4


@dataclass(frozen=True)
class MemberRead:
    """What one or more Queries of a member's range returned. `resume` is where to read on."""

    member_id: str
    profile: ProfileItem | None
    wallet: WalletItem | None
    last_request: RequestRecordItem | None
    pages: tuple[LotPageItem, ...]
    resume: dict[str, Any] | None
    consistent: bool

    def last_request_for(
        self, operation: str, idempotency_key: str, now: datetime
    ) -> RequestRecordItem | None:
        """The member's last request when it is this one (same operation and key) and still live:
        a retry answered from the first read, with no more calls."""
        last = self.last_request
        if last is None or last.request_id != keys.request_id(operation, idempotency_key):
            return None
        return last if is_live(last.ttl, now) else None

    def snapshot(self) -> Snapshot | None:
        if self.wallet is None:
            return None
        state = wallet_state(self.wallet)
        pages = tuple(page_from_item(item, state) for item in self.pages)
        return Snapshot(wallet=state, pages=pages, complete=self.resume is None)


def read_member(
    member_id: str,
    *,
    consistent: bool,
    with_profile: bool = False,
    pages: int = PAGES_PER_READ,
) -> MemberRead:
    """The wallet, the last request and the first `pages` lot pages (and the profile), in one Query."""
    bind()
    key_range = keys.PROFILE_RANGE if with_profile else keys.WALLET_RANGE
    fixed_items = 3 if with_profile else 2
    return _query(
        MemberRead(member_id, None, None, None, (), None, consistent),
        key_range,
        limit=fixed_items + pages,
        start=None,
    )


class WalletInconsistent(RuntimeError):
    """Every page was read and still a step wants more: the wallet and its pages disagree (a bug,
    never a caller's doing); raised instead of reading on forever."""


@dataclass(frozen=True)
class LiveWallet:
    """A read that holds every lot past its expiry that the daily run has not expired yet, so
    the live balance is known: `due` points are stored but no longer count (invariant 1)."""

    read: MemberRead
    snapshot: Snapshot
    due: int

    @property
    def available(self) -> int:
        return self.snapshot.wallet.available - self.due


def read_live(member_id: str, now: datetime, *, consistent: bool, with_profile: bool = False) -> LiveWallet:
    """`read_member`, reading on while due lots may lie beyond the pages read; MemberNotFound
    when the member has no wallet."""
    read = read_member(member_id, consistent=consistent, with_profile=with_profile)
    while True:
        snapshot = read.snapshot()
        if snapshot is None:
            raise MemberNotFound(member_id)
        try:
            return LiveWallet(read, snapshot, due_points(snapshot, now))
        except NeedMorePages:
            read = read_on(read)


def read_on(read: MemberRead, *, pages: int = PAGES_PER_READ * 4) -> MemberRead:
    """The next `pages` lot pages after what `read` holds (one more Query)."""
    if read.resume is None:
        raise WalletInconsistent(f"member {read.member_id}: every page is read, yet a step asks for more")
    return _query(read, keys.WALLET_RANGE, limit=pages, start=read.resume)


def read_all(read: MemberRead) -> MemberRead:
    while read.resume is not None:
        read = read_on(read, pages=1_000)
    return read


def _query(
    read: MemberRead, key_range: keys.KeyRange, *, limit: int, start: dict[str, Any] | None
) -> MemberRead:
    results = TableItem.query(
        keys.member_pk(read.member_id),
        TableItem.sk.between(key_range.first, key_range.last),
        consistent_read=read.consistent,
        limit=limit,
        page_size=limit,
        last_evaluated_key=start,
    )
    profile, wallet, last, pages = read.profile, read.wallet, read.last_request, list(read.pages)
    for item in results:
        if isinstance(item, LotPageItem):
            pages.append(item)
        elif isinstance(item, WalletItem):
            wallet = item
        elif isinstance(item, RequestRecordItem):
            last = item
        elif isinstance(item, ProfileItem):
            profile = item
    return replace(
        read,
        profile=profile,
        wallet=wallet,
        last_request=last,
        pages=tuple(pages),
        resume=results.last_evaluated_key,
    )


def read_page(member_id: str, page_key: str, wallet: WalletState) -> LotPage | None:
    """One lot page, strongly consistent (when the wallet's directory did not say enough)."""
    bind()
    try:
        item = LotPageItem.get(keys.member_pk(member_id), keys.lot_page_sk(page_key), consistent_read=True)
    except LotPageItem.DoesNotExist:
        return None
    return page_from_item(item, wallet)


# ---- items <-> domain


def directory_entry(points: int, first_day: int | None) -> str:
    """A page in the wallet's directory: `"125@24"` (points, day of the soonest expiry), or
    `"125"` for a page whose lots have no date of their own."""
    return f"{points}@{first_day}" if first_day else str(points)


def page_points(entry: str) -> int:
    return int(str(entry).partition("@")[0])


def page_first_day(entry: str) -> int | None:
    day = str(entry).partition("@")[2]
    return int(day) if day else None


def wallet_state(item: WalletItem) -> WalletState:
    directory = item.pages.as_dict()
    return WalletState(
        member_id=item.member_id,
        available=int(item.available),
        version=int(item.version),
        enrolled_at=item.enrolled_at,
        last_activity_at=item.last_activity_at,
        pages={key: page_points(entry) for key, entry in directory.items()},
        first_days={key: day for key, entry in directory.items() if (day := page_first_day(entry))},
        next_expiry_at=item.next_expiry_at,
        activity_expires_at=item.activity_expires_at,
        last_lot_id=item.last_lot_id,
        owed=int(item.owed or 0),
        transfers_sent=tuple(transfer_sent_from(str(entry)) for entry in item.transfers_sent or ()),
        closed_at=item.closed_at,
    )


def transfer_sent_entry(sent: TransferSent) -> str:
    """A transfer in the wallet's `transfersSent`: `"1795464323:250"` (epoch seconds, points)."""
    return f"{int(sent.at.timestamp())}:{sent.points}"


def transfer_sent_from(entry: str) -> TransferSent:
    at, _, points = str(entry).partition(":")
    return TransferSent(datetime.fromtimestamp(int(at), UTC), int(points))


def page_from_item(item: LotPageItem, wallet: WalletState) -> LotPage:
    key = keys.page_key_of(item.sk)
    lots = {lot_id: lot_from_map(lot_id, stored, wallet) for lot_id, stored in item.lots.as_dict().items()}
    return LotPage(key=key, lots=lots)


def lot_from_map(lot_id: str, stored: dict[str, Any], wallet: WalletState) -> Lot:
    """`o` original, `r` remaining, `e` earnedAt and `x` expiresAt (epoch seconds; no `x`: the
    lot never expires, or follows the wallet's activity expiry), `v` rules version."""
    if "x" in stored:
        expiry: datetime | None = datetime.fromtimestamp(int(stored["x"]), UTC)
    elif follows_wallet_expiry(lot_id):
        expiry = wallet.activity_expires_at
    else:
        expiry = None
    return Lot(
        lot_id=lot_id,
        original=int(stored["o"]),
        remaining=int(stored["r"]),
        earned_at=datetime.fromtimestamp(int(stored["e"]), UTC),
        expires_at=expiry,
        source_kind=kind_of_lot(lot_id),
        rules_version=str(stored["v"]),
    )


def lot_to_map(lot: Lot) -> dict[str, Any]:
    stored: dict[str, Any] = {
        "o": lot.original,
        "r": lot.remaining,
        "e": int(lot.earned_at.timestamp()),
        "v": lot.rules_version,
    }
    if lot.expires_at is not None and not follows_wallet_expiry(lot.lot_id):
        stored["x"] = int(lot.expires_at.timestamp())
    return stored


def read_wallet(member_id: str, *, consistent: bool = True) -> Snapshot | None:
    """The whole wallet, every page (tools and tests; movements read only what they need)."""
    return read_all(read_member(member_id, consistent=consistent)).snapshot()


def read_expiring_by(
    member_id: str, through_month: str, horizon: datetime, *, consistent: bool
) -> Snapshot | None:
    """The wallet and the pages whose lots can expire by `horizon`: one Query of the wallet, the
    last request and the dated pages of buckets through `through_month` (`YYYY-MM`,
    `keys.wallet_and_due_pages_range`); under policy inactivity, when the wallet's activity expiry
    is at or before `horizon` and it holds ACTIVITY pages, one more Query of those. Used by the
    expiry run (strongly consistent, `horizon` = as-of) and the reminders (the largest window).
    None: no wallet."""
    bind()
    wallet_item: WalletItem | None = None
    page_items: list[LotPageItem] = []
    for item in _query_range(member_id, keys.wallet_and_due_pages_range(through_month), consistent):
        if isinstance(item, WalletItem):
            wallet_item = item
        elif isinstance(item, LotPageItem):
            page_items.append(item)
    if wallet_item is None:
        return None
    wallet = wallet_state(wallet_item)
    activity = wallet.activity_expires_at
    if (
        activity is not None
        and activity <= horizon
        and any(bucket_of_page(key) == ACTIVITY_BUCKET for key in wallet.pages)
    ):
        activity_pages = _query_range(member_id, keys.bucket_pages_range(ACTIVITY_BUCKET), consistent)
        page_items += [item for item in activity_pages if isinstance(item, LotPageItem)]
    pages = tuple(page_from_item(item, wallet) for item in page_items)
    read = {page.key for page in pages}
    return Snapshot(wallet, pages, complete=all(key in read for key in wallet.pages))


def _query_range(member_id: str, key_range: keys.KeyRange, consistent: bool) -> list[TableItem]:
    # Every page of the range (pynamodb follows LastEvaluatedKey): the pages asked for are few.
    return list(
        TableItem.query(
            keys.member_pk(member_id),
            TableItem.sk.between(key_range.first, key_range.last),
            consistent_read=consistent,
        )
    )
