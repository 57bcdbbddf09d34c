"""Members with points due: the sparse ByNextExpiry index, one shard at a time (the expiry and
reminder runs query every shard in parallel; docs/design.md, "Indexes")."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from loyalty.store import keys
from loyalty.store.models import WalletItem, bind
from loyalty.timefmt import format_instant


def members_due(as_of: datetime, shard: int) -> Iterator[str]:
    """The members of `shard` whose next expiry is at or before `as_of` (exactly `as_of`
    included), soonest first. The index is eventually consistent: a member whose wallet moved
    a moment ago may still be listed or not yet listed; the runs read the wallet before acting."""
    bind()
    shard_key = keys.expiry_shard_key(shard)
    bound = keys.due_upper_bound(format_instant(as_of))
    for item in WalletItem.by_next_expiry.query(shard_key, WalletItem.gsi1sk < bound):
        yield str(item.gsi1sk).rsplit("#", 1)[1]
