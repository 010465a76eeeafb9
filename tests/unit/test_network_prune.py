"""`POST /networks/prune` filters (netrules.prune_predicate) and the GetTimestamp they use: every
key is applied or refused with dockerd's text, so a prune never widens past what was asked."""
from __future__ import annotations

import pytest

from tether.network.netrules import prune_predicate
from tether.rules.errors import ApiError
from tether.rules.times import get_timestamp, go_duration_ns

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def view(created: str, labels: dict[str, str] | None = None) -> dict:
    return {"Name": "n", "Created": created, "Labels": labels}


@pytest.mark.parametrize("text, ns", [("1h", 3600 * 10**9), ("1h30m", 5400 * 10**9),
                                      ("1.5s", 1_500_000_000), ("500ms", 5 * 10**8),
                                      ("-2m", -120 * 10**9), ("0", 0), (".5h", 1800 * 10**9)])
def test_go_durations(text: str, ns: int) -> None:
    assert go_duration_ns(text) == ns


@pytest.mark.parametrize("text", ["", "1", "h", "1d", "1h2", "1h 2m", "2000-01-01", "bogus"])
def test_not_go_durations(text: str) -> None:
    assert go_duration_ns(text) is None


@pytest.mark.parametrize("value, expected", [
    ("1h", NOW - 3600), ("0", 0.0), ("1500000000", 1_500_000_000.0), ("1.25", 1.25),
    ("2000-01-01", 946_684_800.0), ("2000-01-01T00:00:00Z", 946_684_800.0),
    ("2000-01-01T01:00:00+01:00", 946_684_800.0), ("2000-01-01T00:00:00.5Z", 946_684_800.5)])
def test_get_timestamp(value: str, expected: float) -> None:
    assert float(get_timestamp(value, NOW)) == pytest.approx(expected)


def test_get_timestamp_passes_unix_times_as_given() -> None:
    assert get_timestamp("1500000000.123456789", NOW) == "1500000000.123456789"


def test_get_timestamp_refuses_in_dockerds_words() -> None:
    with pytest.raises(ValueError, match='^failed to parse value as time or duration: "bogus"$'):
        get_timestamp("bogus", NOW)
    with pytest.raises(ValueError, match="2000-13-01"):
        get_timestamp("2000-13-01", NOW)


def test_until_keeps_networks_made_after_it() -> None:
    old, new = view("2023-11-14T20:00:00.000000000Z"), view("2023-11-14T22:00:00.000000000Z")
    prunable = prune_predicate({"until": ["1h"]}, NOW)
    assert prunable(old) and not prunable(new)
    assert not prune_predicate({"until": ["2000-01-01"]}, NOW)(old)


def test_labels_all_required_and_label_not_excludes_when_all_match() -> None:
    tagged = view("2023-11-14T20:00:00Z", {"keep": "1", "tier": "db"})
    bare = view("2023-11-14T20:00:00Z")
    assert prune_predicate({"label": ["keep", "tier=db"]}, NOW)(tagged)
    assert not prune_predicate({"label": ["keep", "tier=web"]}, NOW)(tagged)
    assert not prune_predicate({"label!": ["keep=1"]}, NOW)(tagged)
    assert prune_predicate({"label!": ["keep=1"]}, NOW)(bare)
    assert prune_predicate({"label!": ["keep=1", "other"]}, NOW)(tagged)  # not every one matched


@pytest.mark.parametrize("filters, status, message", [
    ({"foo": ["1"]}, 400, "Invalid filter 'foo'"),
    ({"dangling": ["true"]}, 400, "Invalid filter 'dangling'"),
    # dockerd's getUntilFromPruneFilters errors are untyped: 500 (checked on Docker 20.10)
    ({"until": ["1h", "2h"]}, 500, "more than one until filter specified"),
    ({"until": ["bogus"]}, 500, 'failed to parse value as time or duration: "bogus"')])
def test_refused_filters(filters: dict, status: int, message: str) -> None:
    with pytest.raises(ApiError) as info:
        prune_predicate(filters, NOW)
    assert (info.value.status, info.value.message) == (status, message)
