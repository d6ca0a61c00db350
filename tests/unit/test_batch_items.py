"""batch_processing's per-item work: which numbers are too large for their result to be written."""

import math

from app.tasks.builtin.batch_processing import _max_int_bits


def test_the_integer_bound_follows_pythons_digit_limit_and_none_means_no_bound() -> None:
    bits = _max_int_bits(4300)
    assert math.floor(bits * math.log10(2)) + 1 <= 4300 < math.floor((bits + 16) * math.log10(2)) + 1
    # PYTHONINTMAXSTRDIGITS=0 lifts Python's limit: no integer is too long (it made every number too large)
    assert _max_int_bits(0) == math.inf
