"""The one rule that reads a `container:<name|id>` namespace mode."""
import pytest

from tether.rules.container_mode import donor


@pytest.mark.parametrize("mode, expected", [
    ("container:web", "web"), ("container:" + "a" * 64, "a" * 64), ("container:", ""),
    ("host", ""), ("", ""), (None, ""), ("shareable", ""), (["container:web"], ""),
    ("Container:web", ""),
])
def test_donor_is_named_only_by_a_container_mode(mode, expected) -> None:
    assert donor(mode) == expected
