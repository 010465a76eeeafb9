"""Reference parsing against Docker's normalisation and error texts (checked on a Docker engine)."""
import pytest

from tether.rules import refs
from tether.rules.errors import BadRequest


@pytest.mark.parametrize("text, familiar, full", [
    ("busybox", "busybox:latest", "docker.io/library/busybox:latest"),
    ("library/busybox", "busybox:latest", "docker.io/library/busybox:latest"),
    ("docker.io/library/busybox", "busybox:latest", "docker.io/library/busybox:latest"),
    ("index.docker.io/library/busybox:1", "busybox:1", "docker.io/library/busybox:1"),
    ("other/y", "other/y:latest", "docker.io/other/y:latest"),
    ("localhost:5000/x/y:tag", "localhost:5000/x/y:tag", "localhost:5000/x/y:tag"),
    ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
    ("Foo/bar", "Foo/bar:latest", "Foo/bar:latest"),  # an uppercase first component is a domain
    ("a.b-c__d/e:UP", "a.b-c__d/e:UP", "a.b-c__d/e:UP"),
])
def test_normalisation(text: str, familiar: str, full: str) -> None:
    ref = refs.parse_normalized(text).tag_name_only()
    assert str(ref) == familiar
    assert ref.full() == full


@pytest.mark.parametrize("text, message", [
    ("Busybox", "invalid reference format: repository name must be lowercase"),
    ("busybox:", "invalid reference format"),
    ("a:b:c", "invalid reference format"),
    (":x", "invalid reference format"),
    ("", "invalid reference format"),
    ("a..b", "invalid reference format"),
    ("foo@sha256:aaaa", "invalid reference format"),
    ("9b09a4b5d9ecd5ef0f2d6bdc87b85c8f6eb79c64cee9b7ab75ca3e7b04bb7d45",
     "invalid repository name (9b09a4b5d9ecd5ef0f2d6bdc87b85c8f6eb79c64cee9b7ab75ca3e7b04bb7d45), "
     "cannot specify 64-byte hexadecimal strings"),
    ("a" * 256, "repository name must not be more than 255 characters"),
])
def test_bad_references(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as exc:
        refs.parse_normalized(text)
    assert exc.value.message == message


def test_digest_reference_parses() -> None:
    ref = refs.parse_normalized("bb@sha256:" + "a" * 64)
    assert ref.digest == "sha256:" + "a" * 64 and ref.tag is None
    assert str(ref.tag_name_only()) == "bb@sha256:" + "a" * 64


def test_parse_any_recognises_ids() -> None:
    hex64 = "0123456789abcdef" * 4
    assert refs.parse_any(hex64) == f"sha256:{hex64}"
    assert refs.parse_any(f"sha256:{hex64}") == f"sha256:{hex64}"
    assert refs.parse_any("sha256:0123") == refs.parse_normalized("sha256:0123")


@pytest.mark.parametrize("tag", ["-x", "a:b", "x" * 129, ""])
def test_bad_tags(tag: str) -> None:
    with pytest.raises(BadRequest, match="^invalid tag format$"):
        refs.parse_normalized("foo").with_tag(tag)


def test_sort_key_orders_by_full_name() -> None:
    tags = ["localhost:5000/x/y:t", "zz:t", "foo:latest", "foo:UP", "bb:1"]
    assert sorted(tags, key=refs.sort_key) == ["bb:1", "foo:UP", "foo:latest", "zz:t", "localhost:5000/x/y:t"]
