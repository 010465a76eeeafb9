"""Docker's local-volume rules: names, options, `o=` parsing, list and prune filters."""
import pytest

from tether.engine import volume_rules as rules
from tether.rules.errors import BadRequest


@pytest.mark.parametrize("name", ["ab", "my-vol", "x.1_2", "0" * 64, "A9"])
def test_valid_names(name):
    assert rules.name_error(name) is None


def test_one_character_name_is_too_short():
    assert rules.name_error("a") == ("volume name is too short, names should be at least two "
                                     "alphanumeric characters")


@pytest.mark.parametrize("name", ["a b", ".ab", "_ab", "a/b", "a:b", "ab\n"])
def test_invalid_characters(name):
    assert rules.name_error(name) == (
        f'"{name}" includes invalid characters for a local volume name, only '
        '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
        "use absolute path")


@pytest.mark.parametrize("options, error", [
    ({}, None),
    ({"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}, None),
    ({"type": "none", "device": "/x"}, None),
    ({"foo": "bar"}, 'invalid option: "foo"'),
    ({"type": "tmpfs"}, 'missing required option: "device"'),
    ({"o": "size=1m"}, 'missing required option: "device"'),
    ({"device": "/x"}, 'missing required option: "type"'),
    ({"type": "tmpfs", "device": "tmpfs", "size": "1m"},
     "quota size requested but no quota support"),
])
def test_options(options, error):
    assert rules.options_error(options) == error


@pytest.mark.parametrize("text, flags, data", [
    ("", 0, ""),
    ("size=64m,uid=1000", 0, "size=64m,uid=1000"),
    ("bind", rules.MS_BIND, ""),
    ("bind,ro", rules.MS_BIND | rules.MS_RDONLY, ""),
    ("ro,rw", 0, ""),
    ("rbind,rprivate", rules.MS_BIND | rules.MS_REC | rules.MS_PRIVATE, ""),
    ("nosuid,nodev,noexec,size=1m", rules.MS_NOSUID | rules.MS_NODEV | rules.MS_NOEXEC, "size=1m"),
    ("noatime,atime", 0, ""),
    ("addr=1.2.3.4,defaults", 0, "addr=1.2.3.4"),
])
def test_parse_mount_options(text, flags, data):
    assert rules.parse_mount_options(text) == (flags, data)


def test_mount_request_of_a_plain_volume_is_none():
    assert rules.mount_request({}) is None


def test_read_only_bind_needs_a_remount():
    request = rules.mount_request({"type": "none", "device": "/src", "o": "bind,ro"})
    assert request == rules.MountRequest("/src", "none", rules.MS_BIND | rules.MS_RDONLY, "")
    assert request.remount_read_only
    tmpfs = rules.mount_request({"type": "tmpfs", "device": "tmpfs", "o": "ro,size=1m"})
    assert not tmpfs.remount_read_only


def test_mount_error_text_as_moby_words_it():
    assert rules.mount_error_text("mount", "/nonexist", "/v/_data", 0x1000, "",
                                  "no such file or directory") == \
        "mount /nonexist:/v/_data, flags: 0x1000: no such file or directory"
    assert rules.mount_error_text("mount", "tmpfs", "/v/_data", 1, "size=abc", "invalid argument") == \
        "mount tmpfs:/v/_data, flags: 0x1, data: size=abc: invalid argument"
    assert rules.mount_error_text("mount", "", "/t", 0, "", "x") == "mount /t: x"


VOLUMES = {"db": ("local", {"app": "shop", "tier": "data"}),
           "cache": ("local", {"app": "shop"}),
           "logs": ("local", {}),
           "web-db": ("other", {})}


def listed(filters, used=("db",)):
    test = rules.list_predicate(filters, lambda name: name in used)
    return sorted(n for n, (driver, labels) in VOLUMES.items() if test(n, driver, labels))


def test_list_without_filters():
    assert listed({}) == ["cache", "db", "logs", "web-db"]


def test_list_name_is_an_unanchored_regex_any_of():
    assert listed({"name": ["db"]}) == ["db", "web-db"]
    assert listed({"name": ["^db$", "cach"]}) == ["cache", "db"]
    assert listed({"name": ["["]}) == []


def test_list_labels_must_all_match():
    assert listed({"label": ["app"]}) == ["cache", "db"]
    assert listed({"label": ["app=shop", "tier"]}) == ["db"]
    assert listed({"label": ["app=other"]}) == []


def test_list_driver_and_dangling():
    assert listed({"driver": ["other"]}) == ["web-db"]
    assert listed({"dangling": ["true"]}) == ["cache", "logs", "web-db"]
    assert listed({"dangling": ["0"]}) == ["db"]
    assert listed({"dangling": ["false", "true"]}) == ["cache", "logs", "web-db"]


def test_list_bad_filters():
    with pytest.raises(BadRequest, match=r"^Invalid filter 'dangling=\[xyz\]'$"):
        listed({"dangling": ["xyz"]})
    with pytest.raises(BadRequest, match=r"^Invalid filter 'foo'$"):
        listed({"foo": ["bar"]})


ANON = {rules.ANONYMOUS_LABEL: ""}


@pytest.mark.parametrize("filters, version, labels, pruned", [
    ({}, (1, 44), {}, False),
    ({}, (1, 44), ANON, True),
    ({}, (1, 41), {}, True),
    ({"all": ["true"]}, (1, 44), {}, True),
    ({"all": ["1"]}, (1, 42), {}, True),
    ({"all": ["false"]}, (1, 44), {}, False),
    ({"label": ["a"]}, (1, 41), {"a": "1"}, True),
    ({"label": ["a=2"]}, (1, 41), {"a": "1"}, False),
    ({"label!": ["a"]}, (1, 41), {"a": "1"}, False),
    ({"label!": ["a=2"]}, (1, 41), {"a": "1"}, True),
])
def test_prune_predicate(filters, version, labels, pruned):
    assert rules.prune_predicate(filters, version)(labels) is pruned


def test_prune_filter_errors():
    with pytest.raises(BadRequest, match=r"^Invalid filter 'all'$"):
        rules.prune_predicate({"all": ["true"]}, (1, 41))
    with pytest.raises(BadRequest, match=r"^Invalid filter 'all=\[maybe\]'$"):
        rules.prune_predicate({"all": ["maybe"]}, (1, 44))
    with pytest.raises(BadRequest, match=r"^Invalid filter 'dangling'$"):
        rules.prune_predicate({"dangling": ["true"]}, (1, 44))
