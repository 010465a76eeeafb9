"""`docker ps --filter` rules (rules/ps_filters.py); the texts and cuts were taken from Docker
20.10 on this machine."""
from __future__ import annotations

import pytest

from tether.rules import ps_filters
from tether.rules.errors import ApiError, BadRequest

IDS = ["e5", "d4", "c3", "b2", "a1"]  # newest first, as the list walks them


def test_unknown_key_refused_known_keys_accepted() -> None:
    ps_filters.check_keys({key: ["x"] for key in ps_filters.ACCEPTED})
    with pytest.raises(BadRequest, match=r"^Invalid filter 'colour'$"):
        ps_filters.check_keys({"name": ["a"], "colour": ["red"]})


@pytest.mark.parametrize("before, since, expected", [
    (None, None, IDS),
    ("d4", None, ["c3", "b2", "a1"]),
    ("a1", None, []),
    (None, "b2", ["e5", "d4", "c3"]),
    (None, "e5", []),
    ("d4", "a1", ["c3", "b2"]),
    # `since` met while `before` still skips does not end the list (dockerd: p1 only)
    ("b2", "d4", ["a1"]),
])
def test_before_since_cut(before, since, expected) -> None:
    assert ps_filters.cut_before_since(IDS, before, since) == expected


def test_before_since_names_a_full_id_or_an_exact_name() -> None:
    names = {"a" * 64: ["/web"], "b" * 64: ["/db", "/web/db"]}
    assert ps_filters.resolve_exact("a" * 64, names) == "a" * 64
    assert ps_filters.resolve_exact("web", names) == "a" * 64
    assert ps_filters.resolve_exact("/db", names) == "b" * 64
    assert ps_filters.resolve_exact("web/db", names) == "b" * 64
    for value in ("aaaaaaaaaaaa", "nope", "", "we"):  # no prefix, no substring
        with pytest.raises(ApiError) as caught:
            ps_filters.resolve_exact(value, names)
        assert (caught.value.status, caught.value.message) == (500, f"no such container {value}")


def test_a_name_two_containers_hold_is_not_found() -> None:
    with pytest.raises(ApiError, match="^no such container x$"):
        ps_filters.resolve_exact("x", {"a": ["/x"], "b": ["x"]})


def test_port_sets() -> None:
    assert ps_filters.port_set("publish", ["80"]) == {"80/tcp"}
    assert ps_filters.port_set("expose", ["90/udp", "8000-8002"]) == {
        "90/udp", "8000/tcp", "8001/tcp", "8002/tcp"}
    assert ps_filters.port_set("expose", []) == set()


@pytest.mark.parametrize("key, value, text", [
    ("publish", "80:80", "filter for 'publish' should not contain ':': 80:80"),
    ("expose", "1.2.3.4:80/tcp", "filter for 'expose' should not contain ':': 1.2.3.4:80/tcp"),
    ("publish", "x", 'error while looking up for publish x: strconv.ParseUint: parsing "x": '
                     "invalid syntax"),
    ("expose", "9-8",
     "error while looking up for expose 9-8: Invalid range specified for the Port: 9-8"),
    ("publish", "/tcp",
     "error while looking up for publish /tcp: Empty string specified for ports."),
])
def test_port_filter_errors(key, value, text) -> None:
    with pytest.raises(ApiError) as caught:
        ps_filters.port_set(key, [value])
    assert (caught.value.status, caught.value.message) == (500, text)


def test_ports_match_published_or_exposed() -> None:
    ports = [{"PrivatePort": 90, "PublicPort": 9090, "Type": "udp", "IP": "0.0.0.0"},
             {"PrivatePort": 80, "Type": "tcp"}]
    assert ps_filters.ports_match(ports, set(), set())
    assert ps_filters.ports_match(ports, {"9090/udp"}, set())
    assert not ps_filters.ports_match(ports, {"9090/tcp"}, set())
    assert not ps_filters.ports_match(ports, {"90/udp"}, set())
    assert ps_filters.ports_match(ports, set(), {"80/tcp"})
    assert ps_filters.ports_match(ports, {"1/tcp"}, {"90/udp"})  # either set may match
    assert not ps_filters.ports_match([], {"80/tcp"}, set())


@pytest.mark.parametrize("values, expected", [
    ([], None), (["true"], True), (["false"], False), (["false", "true"], True),
    (["x", "false"], False),
])
def test_is_task(values, expected) -> None:
    assert ps_filters.wants_tasks(values) is expected


def test_is_task_other_value() -> None:
    with pytest.raises(BadRequest, match=r"^Invalid filter 'is-task=\[bogus x\]'$"):
        ps_filters.wants_tasks(["bogus", "x"])


def test_exit_codes() -> None:
    assert ps_filters.exit_codes(["0", "137", "-1", "+2"]) == [0, 137, -1, 2]
    for value in ("x", "", "1.5", "-"):
        with pytest.raises(ApiError) as caught:
            ps_filters.exit_codes([value])
        assert caught.value.message == f'strconv.Atoi: parsing "{value}": invalid syntax'


def test_status_values() -> None:
    assert not ps_filters.wants_stopped([])
    assert ps_filters.wants_stopped(["running"]) and ps_filters.wants_stopped(ps_filters.STATES)
    with pytest.raises(BadRequest, match=r"^Invalid filter 'status=bogus'$"):
        ps_filters.wants_stopped(["exited", "bogus"])


def test_ancestor_images_with_descendants() -> None:
    tree = {"base": ["mid", "other"], "mid": ["leaf"], "leaf": [], "other": [], "lone": []}
    assert ps_filters.with_descendants(["base"], tree.__getitem__) == {
        "base", "mid", "other", "leaf"}
    assert ps_filters.with_descendants(["mid", "lone"], tree.__getitem__) == {
        "mid", "leaf", "lone"}
    assert ps_filters.with_descendants([], tree.__getitem__) == set()


def test_id_and_name_pick_the_list_dockerd_walks() -> None:
    names = {"ab12" + "0" * 60: ["/web", "/app/db"], "ab34" + "0" * 60: ["/db"],
             "cd56" + "0" * 60: ["/cache"]}
    web, db, cache = names
    assert ps_filters.id_name_candidates(names, [], []) is None
    # an ID prefix names one container; a shared, empty or spaced one names none
    assert ps_filters.id_name_candidates(names, ["ab1"], []) == {web}
    assert ps_filters.id_name_candidates(names, ["ab", "", "c d"], []) == set()
    assert ps_filters.id_name_candidates(names, ["ab3", "cd"], []) == {db, cache}
    # a name matches any name a container holds, link names too, with or without `/`
    assert ps_filters.id_name_candidates(names, [], ["db$"]) == {web, db}
    assert ps_filters.id_name_candidates(names, [], ["^db$"]) == {db}
    # with ids given, names only look among the containers the ids named
    assert ps_filters.id_name_candidates(names, ["cd"], ["db"]) == {cache}
