"""rules/prune.py and rules/buildprune.py: the prune filters as dockerd reads them."""
from __future__ import annotations

import pytest

from tether.rules import buildprune, prune
from tether.rules.errors import ApiError, BadRequest

NOW = 1_700_000_000.0


def test_unknown_key_is_refused_first():
    with pytest.raises(BadRequest, match="Invalid filter 'x'"):
        prune.parse({"x": ["1"], "until": ["bad"]}, prune.CONTAINER_FILTERS, NOW)


def test_until_duration_and_time():
    f = prune.parse({"until": ["1h"]}, prune.CONTAINER_FILTERS, NOW)
    assert f.until == pytest.approx(NOW - 3600)
    assert f.created_in_time(NOW - 3601) and not f.created_in_time(NOW - 10)
    assert prune.parse({"until": ["1600000000"]}, prune.IMAGE_FILTERS, NOW).until == 1600000000.0


@pytest.mark.parametrize("values, text", [
    (["bad"], 'failed to parse value as time or duration: "bad"'),
    (["1h", "2h"], "more than one until filter specified"),
])
def test_bad_until_is_a_500(values, text):
    with pytest.raises(ApiError) as caught:
        prune.parse({"until": values}, prune.CONTAINER_FILTERS, NOW)
    assert (caught.value.status, caught.value.message) == (500, text)


def test_labels_as_match_kv_list():
    f = prune.parse({"label": ["a", "b=2"], "label!": ["c", "d=4"]}, prune.CONTAINER_FILTERS, NOW)
    assert f.keeps_labels({"a": "", "b": "2"})
    assert not f.keeps_labels({"a": "", "b": "3"})
    assert f.keeps_labels({"a": "", "b": "2", "c": ""})  # label! spares only when all match
    assert not f.keeps_labels({"a": "", "b": "2", "c": "", "d": "4"})
    assert prune.parse({}, prune.CONTAINER_FILTERS, NOW).keeps_labels(None)


@pytest.mark.parametrize("values, expected", [
    ([], True), (["true"], True), (["1"], True), (["false"], False), (["0"], False),
    (["true", "false"], False),
])
def test_dangling(values, expected):
    assert prune.dangling_only({"dangling": values} if values else {}) is expected


def test_bad_dangling():
    with pytest.raises(BadRequest, match=r"Invalid filter 'dangling=\[bad\]'"):
        prune.dangling_only({"dangling": ["bad"]})


def test_build_prune_filters():
    buildprune.check({"until": ["24h"], "type": ["regular"]})
    with pytest.raises(BadRequest, match="failed to prune build cache: Invalid filter 'x'"):
        buildprune.check({"x": ["1"]})
    with pytest.raises(ApiError) as caught:
        buildprune.check({"unused-for": ["3 days"]})
    assert caught.value.status == 500
    assert caught.value.message == ('failed to prune build cache: "unused-for" filter expects a '
                                    "duration (e.g., '24h'): time: invalid duration \"3 days\"")
