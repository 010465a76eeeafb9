"""Container name rules: the cases below were checked against a real Docker 20.10 engine."""
from __future__ import annotations

import random
import re
from collections.abc import Iterator

import pytest

from tether.rules.names import (
    ADJECTIVES,
    GENERATE_ATTEMPTS,
    SURNAMES,
    generate_name,
    invalid_name_message,
    random_name,
    short_id,
    valid_name,
)

CONTAINER_ID = "0123456789ab" + "cdef" * 13


class ScriptedRandom(random.Random):
    """A Random whose draws are dictated, so a test can force exactly the combination it needs."""

    def __init__(self, choices: list[str], digits: list[int]) -> None:
        super().__init__(0)
        self._choices: Iterator[str] = iter(choices)
        self._digits: Iterator[int] = iter(digits)

    def choice(self, seq):  # type: ignore[override]
        """Return the next scripted word, insisting it is one the generator could really draw."""
        word = next(self._choices)
        assert word in seq
        return word

    def randrange(self, *args, **kwargs) -> int:  # type: ignore[override]
        """Return the next scripted suffix digit."""
        assert args == (10,)
        return next(self._digits)


@pytest.mark.parametrize(
    "name",
    ["ab", "a1", "9z", "web", "a_b.c-d", "A-", "x.", "0_", "/ab", "/a_b.c-d", "a" * 300],
)
def test_valid_names(name: str) -> None:
    assert valid_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a",  # one character: the pattern needs at least two
        "/a",
        "/",
        "-ab",
        ".ab",
        "_ab",
        "a/b",
        "//ab",  # only one leading slash is stripped
        "ab/",
        "é1",
        "aé",
        "a b",
        "a:b",
        "ab\n",  # Go's `$` does not match before a trailing newline
        "\nab",
    ],
)
def test_invalid_names(name: str) -> None:
    assert not valid_name(name)


def test_invalid_name_message_is_dockers_text() -> None:
    assert invalid_name_message("-ab") == (
        "Invalid container name (-ab), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
    )


def test_word_lists_are_dockers() -> None:
    assert len(ADJECTIVES) == 108 and len(set(ADJECTIVES)) == 108
    assert len(SURNAMES) == 236 and len(set(SURNAMES)) == 236
    assert {"admiring", "boring", "zen", "xenodochial"} <= set(ADJECTIVES)
    assert {"agnesi", "turing", "wozniak", "zhukovsky"} <= set(SURNAMES)
    assert all(re.fullmatch("[a-z]+", w) for w in ADJECTIVES + SURNAMES)


def test_generated_names_have_dockers_shape_and_are_valid() -> None:
    rng = random.Random(1234)
    for _ in range(2000):
        name = generate_name(lambda _n: False, CONTAINER_ID, rng)
        adjective, _, surname = name.partition("_")
        assert adjective in ADJECTIVES
        assert surname in SURNAMES
        assert valid_name(name)


def test_default_rng_gives_varied_names() -> None:
    drawn = {generate_name(lambda _n: False, CONTAINER_ID) for _ in range(50)}
    assert len(drawn) > 40


def test_never_boring_wozniak() -> None:
    rng = ScriptedRandom(["boring", "wozniak", "boring", "wozniak", "boring", "turing"], [])
    assert random_name(0, rng) == "boring_turing"


def test_boring_wozniak_is_rerolled_before_the_suffix() -> None:
    rng = ScriptedRandom(["boring", "wozniak", "happy", "wozniak"], [7])
    assert random_name(1, rng) == "happy_wozniak7"


def test_first_attempt_has_no_suffix_and_later_ones_a_digit() -> None:
    rng = ScriptedRandom(["happy", "turing", "happy", "turing", "sad", "curie"], [3, 0])
    seen: list[str] = []

    def taken(name: str) -> bool:
        seen.append(name)
        return name != "sad_curie0"

    assert generate_name(taken, CONTAINER_ID, rng) == "sad_curie0"
    assert seen == ["happy_turing", "happy_turing3", "sad_curie0"]


def test_retry_suffix_is_one_decimal_digit() -> None:
    rng = random.Random(99)
    for _ in range(500):
        assert re.fullmatch(r"[a-z]+_[a-z]+[0-9]", random_name(1, rng))


def test_falls_back_to_short_id_after_six_collisions() -> None:
    asked: list[str] = []

    def taken(name: str) -> bool:
        asked.append(name)
        return True

    assert generate_name(taken, CONTAINER_ID, random.Random(5)) == "0123456789ab"
    assert len(asked) == GENERATE_ATTEMPTS == 6
    assert re.fullmatch(r"[a-z]+_[a-z]+", asked[0])
    assert all(re.fullmatch(r"[a-z]+_[a-z]+[0-9]", n) for n in asked[1:])


@pytest.mark.parametrize(
    ("container_id", "expected"),
    [
        (CONTAINER_ID, "0123456789ab"),
        ("sha256:" + CONTAINER_ID, "0123456789ab"),
        ("abc", "abc"),
    ],
)
def test_short_id(container_id: str, expected: str) -> None:
    assert short_id(container_id) == expected

