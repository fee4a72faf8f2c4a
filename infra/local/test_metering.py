"""Unit tests for the pure parts of infra/local/metering.py: AWS's rules for item sizes and
capacity units (no emulator, no network)."""

from __future__ import annotations

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from metering import (  # noqa: E402
    Index,
    index_write_units,
    item_size,
    number_size,
    read_units,
    sqs_chunks,
    table_write_units,
    value_size,
    write_units,
)


class Sizes(unittest.TestCase):
    def test_strings_are_their_utf8_bytes(self) -> None:
        self.assertEqual(value_size({"S": "hello"}), 5)
        self.assertEqual(value_size({"S": "é€"}), 5)

    def test_numbers_take_a_byte_per_two_significant_digits_plus_one(self) -> None:
        self.assertEqual(number_size("12345"), 4)
        self.assertEqual(number_size("12345678901234567890123"), 13)
        # Leading and trailing zeros, the sign and the point are not digits.
        self.assertEqual(number_size("0.10"), 2)
        self.assertEqual(number_size("-1000"), 2)
        self.assertEqual(number_size("0"), 2)

    def test_binary_is_its_decoded_bytes(self) -> None:
        self.assertEqual(value_size({"B": "AAEC"}), 3)

    def test_lists_and_maps_cost_three_bytes_and_one_per_element(self) -> None:
        self.assertEqual(value_size({"L": []}), 3)
        self.assertEqual(value_size({"M": {}}), 3)
        self.assertEqual(value_size({"L": [{"S": "ab"}, {"BOOL": True}]}), 3 + (1 + 2) + (1 + 1))
        self.assertEqual(value_size({"M": {"k": {"S": "ab"}}}), 3 + 1 + 1 + 2)

    def test_an_item_is_its_names_and_values(self) -> None:
        item = {"id": {"S": "evt_1"}, "n": {"N": "42"}, "ok": {"NULL": True}}
        self.assertEqual(item_size(item), (2 + 5) + (1 + 2) + (2 + 1))
        self.assertEqual(item_size(None), 0)


class Units(unittest.TestCase):
    def test_writes_per_started_kilobyte(self) -> None:
        self.assertEqual(write_units(0), 1)
        self.assertEqual(write_units(1024), 1)
        self.assertEqual(write_units(1025), 2)

    def test_reads_per_started_four_kilobytes_half_when_eventual(self) -> None:
        self.assertEqual(read_units(0, True), 1.0)
        self.assertEqual(read_units(4096, True), 1.0)
        self.assertEqual(read_units(4097, True), 2.0)
        self.assertEqual(read_units(4097, False), 1.0)
        self.assertEqual(read_units(10, False), 0.5)

    def test_a_write_is_billed_on_the_larger_item(self) -> None:
        small = {"id": {"S": "x"}}
        big = {"id": {"S": "x"}, "pad": {"S": "p" * 1100}}
        self.assertEqual(table_write_units(None, big, big), 2)
        self.assertEqual(table_write_units(big, small, None), 2)  # shrinking update
        self.assertEqual(table_write_units(big, None, None), 2)  # delete
        self.assertEqual(table_write_units(None, None, None), 1)  # delete of nothing
        self.assertEqual(table_write_units(small, small, big), 2)  # a refused put still pays

    def test_sqs_requests_per_started_64_kilobytes(self) -> None:
        self.assertEqual(sqs_chunks(0), 1)
        self.assertEqual(sqs_chunks(65536), 1)
        self.assertEqual(sqs_chunks(65537), 2)
        self.assertEqual(sqs_chunks(256 * 1024), 4)


class IndexWrites(unittest.TestCase):
    keys = ["delivery_id", "attempt"]
    index = Index("by_webhook", ["webhook_id", "at_key"], "INCLUDE", ["outcome"])

    def line(self, **extra: str) -> dict:
        item = {
            "delivery_id": {"S": "dlv_1"},
            "attempt": {"N": "1"},
            "webhook_id": {"S": "wh_1"},
            "at_key": {"S": "2026-11-27T03:00:00.000Z#dlv_1.1"},
            "outcome": {"S": "failed"},
            "response": {"S": "r" * 2000},
        }
        item.update({k: {"S": v} for k, v in extra.items()})
        return item

    def test_an_entry_is_its_keys_and_projection_plus_100_bytes(self) -> None:
        size = self.index.entry_size(self.line(), self.keys)
        projected = {k: v for k, v in self.line().items() if k != "response"}
        self.assertEqual(size, item_size(projected) + 100)
        self.assertIsNone(self.index.entry_size({"delivery_id": {"S": "d"}, "attempt": {"N": "1"}}, self.keys))

    def test_a_new_item_puts_one_entry(self) -> None:
        self.assertEqual(index_write_units(self.index, None, self.line(), self.keys), 1)

    def test_an_item_without_the_index_key_writes_nothing(self) -> None:
        bare = {"delivery_id": {"S": "d"}, "attempt": {"N": "1"}}
        self.assertEqual(index_write_units(self.index, None, bare, self.keys), 0)

    def test_changing_an_unprojected_attribute_writes_nothing(self) -> None:
        self.assertEqual(index_write_units(self.index, self.line(), self.line(response="x"), self.keys), 0)

    def test_changing_a_projected_attribute_updates_the_entry(self) -> None:
        self.assertEqual(index_write_units(self.index, self.line(), self.line(outcome="succeeded"), self.keys), 1)

    def test_changing_the_index_key_deletes_and_puts(self) -> None:
        moved = self.line(at_key="2026-11-27T04:00:00.000Z#dlv_1.1")
        self.assertEqual(index_write_units(self.index, self.line(), moved, self.keys), 2)

    def test_deleting_the_item_deletes_its_entry(self) -> None:
        self.assertEqual(index_write_units(self.index, self.line(), None, self.keys), 1)

    def test_all_projects_everything(self) -> None:
        everything = Index("all", ["webhook_id", "at_key"], "ALL", [])
        self.assertEqual(everything.entry_size(self.line(), self.keys), item_size(self.line()) + 100)
        self.assertEqual(index_write_units(everything, None, self.line(), self.keys), 3)


if __name__ == "__main__":
    unittest.main()
