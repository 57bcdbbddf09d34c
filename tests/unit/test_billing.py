"""What DynamoDB bills, by AWS's documented rules: item sizes and capacity units (bench/billing.py)."""

from __future__ import annotations

import pytest

from bench.billing import (
    IndexSpec,
    get_read_units,
    index_write_units,
    item_size,
    query_read_units,
    transact_get_read_units,
    write_units,
)
from loyalty.store.sizes import number_size

KB = 1024


def item_of(size: int) -> dict[str, dict[str, str]]:
    """An item of exactly `size` bytes: the name `pk` (2 bytes) and a string of `size - 2`."""
    return {"pk": {"S": "x" * (size - 2)}}


# ---- item sizes


def test_a_string_counts_its_name_and_its_utf8_bytes() -> None:
    # Given a name of 4 bytes and "Léa", whose é takes 2 bytes in UTF-8
    item = {"name": {"S": "Léa"}}
    # Then the attribute is 4 + 4 bytes
    assert item_size(item) == 8


def test_a_number_costs_one_byte_per_two_significant_digits_plus_one() -> None:
    assert number_size("12345") == 4  # 5 digits: 3 bytes, + 1


def test_a_number_drops_its_leading_and_trailing_zeros() -> None:
    assert number_size("001200") == number_size("12") == 2


def test_a_number_counts_the_digits_on_both_sides_of_its_decimal_point() -> None:
    assert number_size("12.5") == 3  # digits 1, 2, 5


def test_zero_is_one_byte() -> None:
    assert number_size("0") == 1


def test_a_binary_counts_its_raw_bytes_not_their_base64_text() -> None:
    assert item_size({"b": {"B": b"\x00\x01\x02"}}) == 1 + 3


def test_a_binary_given_as_wire_base64_counts_its_decoded_bytes() -> None:
    assert item_size({"b": {"B": "AAEC"}}) == 1 + 3


def test_booleans_and_nulls_are_one_byte() -> None:
    assert item_size({"ok": {"BOOL": True}, "no": {"NULL": True}}) == (2 + 1) + (2 + 1)


def test_an_empty_map_or_list_costs_three_bytes_of_overhead() -> None:
    assert item_size({"m": {"M": {}}}) == 1 + 3
    assert item_size({"l": {"L": []}}) == 1 + 3


def test_each_list_element_adds_one_byte_to_its_own_size() -> None:
    # Given a list of two one-character strings
    item = {"l": {"L": [{"S": "a"}, {"S": "b"}]}}
    # Then: name 1 + overhead 3 + (1 + 1) per element
    assert item_size(item) == 1 + 3 + 2 * (1 + 1)


def test_a_map_counts_its_keys_like_attribute_names() -> None:
    # Given a map {"ab": 7}
    item = {"m": {"M": {"ab": {"N": "7"}}}}
    # Then: name 1 + overhead 3 + key 2 + number 2 + element byte 1
    assert item_size(item) == 1 + 3 + 2 + 2 + 1


def test_a_set_is_the_sum_of_its_elements() -> None:
    assert item_size({"s": {"SS": ["ab", "c"]}}) == 1 + 3
    assert item_size({"n": {"NS": ["1", "123"]}}) == 1 + 2 + 3


def test_an_absent_item_has_no_size() -> None:
    assert item_size(None) == 0


# ---- writes


def test_an_item_of_1025_bytes_costs_two_write_units() -> None:
    size = item_size(item_of(1025))
    assert size == 1025
    assert write_units("Put", 0, size) == 2


def test_the_same_item_costs_four_write_units_in_a_transaction() -> None:
    assert write_units("Put", 0, 1025, transactional=True) == 4


def test_an_item_of_exactly_one_kilobyte_costs_one_write_unit() -> None:
    assert write_units("Put", 0, KB) == 1


def test_a_put_that_replaces_a_larger_item_pays_for_the_larger_one() -> None:
    assert write_units("Put", 3 * KB, 100) == 3


def test_an_update_pays_for_the_larger_of_the_item_before_and_after() -> None:
    assert write_units("Update", 1500, 2100) == 3
    assert write_units("Update", 2100, 1500) == 3


def test_an_update_of_one_attribute_of_a_large_item_pays_for_the_whole_item() -> None:
    # Given a 40 KB lot page that gains one lot of ~110 bytes
    before, after = 40 * KB, 40 * KB + 110
    # Then the update costs the whole page, twice inside a transaction
    assert write_units("Update", before, after) == 41
    assert write_units("Update", before, after, transactional=True) == 82


def test_a_delete_pays_for_the_deleted_item() -> None:
    assert write_units("Delete", 2500, 0) == 3


def test_deleting_an_item_that_does_not_exist_still_costs_one_write_unit() -> None:
    assert write_units("Delete", 0, 0) == 1


def test_a_condition_check_in_a_transaction_costs_two_write_units_for_a_small_item() -> None:
    assert write_units("ConditionCheck", 300, 300, transactional=True) == 2


def test_a_condition_check_outside_a_transaction_does_not_exist() -> None:
    with pytest.raises(ValueError, match="TransactWriteItems"):
        write_units("ConditionCheck", 300, 300)


# ---- reads


def test_a_query_reading_three_items_of_1_5_kb_rounds_their_sum_once() -> None:
    # Given three items of 1.5 KB: 4.5 KB together
    sizes = [1536, 1536, 1536]
    # Then one Query costs 8 KB of reads: 2 units strongly consistent, 1 eventually consistent
    assert query_read_units(sizes, consistent=True) == 2
    assert query_read_units(sizes, consistent=False) == 1


def test_a_batch_get_rounds_each_item_up_to_4_kb_on_its_own() -> None:
    # Given AWS's example: a 1.5 KB item and a 6.5 KB item
    sizes = [1536, 6656]
    # Then they cost 4 KB + 8 KB, not 8 KB
    assert get_read_units(sizes, consistent=True) == 3
    assert get_read_units(sizes, consistent=False) == 1.5


def test_reading_a_missing_item_still_costs_the_minimum_unit() -> None:
    assert get_read_units([None], consistent=True) == 1
    assert get_read_units([None], consistent=False) == 0.5


def test_a_query_that_reads_nothing_costs_the_minimum_unit() -> None:
    assert query_read_units([], consistent=False) == 0.5


def test_a_transactional_read_costs_two_units_per_4_kb_of_each_item() -> None:
    assert transact_get_read_units([5000, None]) == 2 * 2 + 2


# ---- global secondary indexes

EXPIRY_INDEX = IndexSpec(
    name="ByNextExpiry", keys=("gsi1pk", "gsi1sk"), table_keys=("pk", "sk"), projection="KEYS_ONLY"
)


def wallet(next_expiry: str | None, available: int = 10) -> dict[str, dict[str, str]]:
    item = {"pk": {"S": "MEMBER#m-1"}, "sk": {"S": "WALLET"}, "available": {"N": str(available)}}
    if next_expiry is not None:
        item["gsi1pk"] = {"S": "EXPIRY#007"}
        item["gsi1sk"] = {"S": f"{next_expiry}#m-1"}
    return item


def test_an_item_entering_a_sparse_index_costs_one_index_write() -> None:
    assert index_write_units(wallet(None), wallet("2027-01-01"), EXPIRY_INDEX) == 1


def test_changing_an_index_key_costs_two_index_writes() -> None:
    assert index_write_units(wallet("2027-01-01"), wallet("2027-02-01"), EXPIRY_INDEX) == 2


def test_an_item_leaving_the_index_costs_one_index_write() -> None:
    assert index_write_units(wallet("2027-01-01"), None, EXPIRY_INDEX) == 1


def test_a_change_to_an_attribute_a_keys_only_index_does_not_project_costs_no_index_write() -> None:
    before, after = wallet("2027-01-01", available=10), wallet("2027-01-01", available=20)
    assert index_write_units(before, after, EXPIRY_INDEX) == 0


def test_a_change_to_a_projected_attribute_costs_one_index_write() -> None:
    everything = IndexSpec(name="all", keys=("gsi1pk",), table_keys=("pk", "sk"), projection="ALL")
    before, after = wallet("2027-01-01", available=10), wallet("2027-01-01", available=20)
    assert index_write_units(before, after, everything) == 1


def test_an_item_outside_the_index_before_and_after_costs_nothing_there() -> None:
    assert index_write_units(wallet(None), wallet(None, available=5), EXPIRY_INDEX) == 0
