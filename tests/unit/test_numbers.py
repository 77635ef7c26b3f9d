"""vms.core.numbers: numbers read strictly (ASCII digits, bounded length)."""

from __future__ import annotations

import pytest

from vms.core.numbers import MAX_ID, decimal, id_number


@pytest.mark.parametrize("text", ["", "²", "١", "1²", "-1", "+1", " 1", "1.0", "9" * 20, "9" * 5000, "0x1"])
def test_anything_but_ascii_digits_of_bounded_length_is_none(text):
    assert decimal(text) is None


def test_numbers_and_their_bounds():
    assert decimal("0") == 0 and decimal("007") == 7 and decimal("9" * 19) == int("9" * 19)
    assert decimal("123456", max_digits=5) is None and decimal("12345", max_digits=5) == 12345
    assert id_number("1") == 1 and id_number(str(MAX_ID)) == MAX_ID
    assert id_number("0") is None and id_number(str(MAX_ID + 1)) is None and id_number("²") is None
