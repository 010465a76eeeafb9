"""go-units wording tables (values checked against docker/go-units' duration.go and size.go)."""
import pytest

from tether.rules.units import bytes_size, human_duration, human_size


@pytest.mark.parametrize("seconds,text", [
    (0, "Less than a second"), (0.99, "Less than a second"), (1, "1 second"), (2, "2 seconds"),
    (59, "59 seconds"), (60, "About a minute"), (119, "About a minute"), (120, "2 minutes"),
    (3599, "59 minutes"), (3600, "About an hour"), (5399, "About an hour"), (5400, "2 hours"),
    (47 * 3600, "47 hours"), (48 * 3600, "2 days"), (13 * 86400, "13 days"),
    (14 * 86400, "2 weeks"), (59 * 86400, "8 weeks"), (60 * 86400, "2 months"),
    (729 * 86400, "24 months"), (730 * 86400, "2 years"),
])
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


@pytest.mark.parametrize("size,text", [
    (0, "0B"), (999, "999B"), (1000, "1kB"), (1990000, "1.99MB"), (4260000, "4.26MB"),
    (1234567890, "1.23GB"), (123456, "123kB"), (999999, "1e+03kB"), (10**24, "1YB"),
])
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


def test_bytes_size() -> None:
    assert bytes_size(25275785216) == "23.54GiB"
    assert bytes_size(512) == "512B"
