"""The filter rules every listing and prune endpoint shares (rules/filters.py)."""
import pytest

from tether.rules.errors import BadRequest
from tether.rules.filters import check_keys, invalid_value, label_matches, pattern_matches

LABELS = {"a": "1", "b": "", "c": "x=y"}


@pytest.mark.parametrize("expr, expected", [
    ("a", True), ("a=1", True), ("a=2", False), ("a=", False), ("b", True), ("b=", True),
    ("c=x=y", True), ("c=x", False), ("z", False), ("z=1", False), ("", False),
])
def test_label_matches_as_dockerd(expr, expected) -> None:
    assert label_matches(LABELS, expr) is expected


def test_the_first_unknown_key_is_named_in_dockerds_text() -> None:
    check_keys({"label": ["a"], "until": ["1h"]}, ("label", "until"))
    with pytest.raises(BadRequest, match=r"^Invalid filter 'colour'$"):
        check_keys({"label": [], "colour": ["red"], "shape": []}, frozenset({"label"}))
    with pytest.raises(BadRequest, match=r"^failed: Invalid filter 'x'$"):
        check_keys({"x": []}, (), "failed: ")


def test_an_unreadable_value_is_named_with_all_its_values() -> None:
    assert invalid_value("dangling", ["x", "y"]).message == "Invalid filter 'dangling=[x y]'"


@pytest.mark.parametrize("pattern, value, expected", [
    ("web", "web", True), ("we", "web", True), ("^w.b$", "web", True), ("^e", "web", False),
    ("[", "[", True), ("[", "a[", False), ("", "web", True),
])
def test_pattern_matches_as_filters_match(pattern, value, expected) -> None:
    assert pattern_matches(pattern, value) is expected
