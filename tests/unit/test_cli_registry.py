"""`tether login/logout/pull/push` rules: docker's config.json, X-Registry-Auth, plain output."""
from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path

import pytest

from tether.cli.client import CliError
from tether.cli.common import plain_lines, show_progress
from tether.cli.credentials import (INDEX_SERVER, auth_for, config_path, load_config, registry_auth_header,
                                    registry_of, save_config, server_key, stored_auth_header, with_login,
                                    without_login)


def test_config_path_follows_docker_config(tmp_path: Path) -> None:
    assert config_path({"DOCKER_CONFIG": str(tmp_path)}) == tmp_path / "config.json"
    assert config_path({}).name == "config.json" and config_path({}).parent.name == ".docker"


@pytest.mark.parametrize("server, key", [
    (None, INDEX_SERVER), ("docker.io", INDEX_SERVER), ("https://index.docker.io/v1/", INDEX_SERVER),
    ("localhost:5000", "localhost:5000"), ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"),
])
def test_server_keys_are_dockers(server: str | None, key: str) -> None:
    assert server_key(server) == key


@pytest.mark.parametrize("image, registry", [
    ("busybox", "docker.io"), ("library/busybox", "docker.io"), ("user/app:1", "docker.io"),
    ("localhost:5000/x", "localhost:5000"), ("localhost/x", "localhost"), ("quay.io/a/b", "quay.io"),
])
def test_registry_of_an_image(image: str, registry: str) -> None:
    assert registry_of(image) == registry


def test_login_logout_keep_other_settings(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.json"
    save_config(path, with_login({"credsStore": "", "psFormat": "x"}, "localhost:5000", "alice", "s3cret"))
    config = load_config(path)
    assert config["auths"] == {"localhost:5000": {"auth": "YWxpY2U6czNjcmV0"}}
    assert config["psFormat"] == "x"
    assert path.stat().st_mode & 0o777 == 0o600
    assert auth_for(config, "localhost:5000") == {"username": "alice", "password": "s3cret",
                                                  "serveraddress": "localhost:5000"}
    assert auth_for(config, "docker.io") is None
    config, found = without_login(config, "localhost:5000")
    assert found and config["auths"] == {} and config["psFormat"] == "x"
    assert without_login(config, "localhost:5000")[1] is False


def test_docker_hub_login_is_found_under_its_legacy_key() -> None:
    config = {"auths": {INDEX_SERVER: {"auth": base64.b64encode(b"u:p").decode()}}}
    assert auth_for(config, "docker.io")["username"] == "u"


def test_a_broken_config_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{nope")
    with pytest.raises(CliError, match="loading config file"):
        load_config(path)
    assert load_config(tmp_path / "missing.json") == {}


def test_registry_auth_header_is_base64url_json() -> None:
    assert registry_auth_header(None) == {}
    header = registry_auth_header({"username": "a", "password": "b", "serveraddress": "s"})["X-Registry-Auth"]
    assert json.loads(base64.urlsafe_b64decode(header)) == {"username": "a", "password": "b",
                                                            "serveraddress": "s"}


def test_stored_auth_header_is_the_login_of_the_images_registry(tmp_path: Path) -> None:
    """What pull, push and run's pull send: the login stored for the image's own registry."""
    environ = {"DOCKER_CONFIG": str(tmp_path)}
    save_config(tmp_path / "config.json", with_login({}, "localhost:5000", "alice", "s3cret"))
    header = stored_auth_header("localhost:5000/team/app", environ)["X-Registry-Auth"]
    assert json.loads(base64.urlsafe_b64decode(header)) == {"username": "alice", "password": "s3cret",
                                                            "serveraddress": "localhost:5000"}
    assert stored_auth_header("busybox", environ) == {}
    assert stored_auth_header("localhost:5000/x", {"DOCKER_CONFIG": str(tmp_path / "none")}) == {}


def test_plain_lines_are_dockers_non_terminal_display() -> None:
    messages = [
        {"status": "Pulling from x", "id": "latest"},
        {"status": "Pulling fs layer", "progressDetail": {}, "id": "abc"},
        {"status": "Downloading", "progressDetail": {"current": 1, "total": 2}, "id": "abc"},
        {"status": "Pull complete", "progressDetail": {}, "id": "abc"},
        {"progressDetail": {}, "aux": {"Tag": "v1"}},
        {"status": "Digest: sha256:1"},
    ]
    assert list(plain_lines(messages)) == ["latest: Pulling from x", "abc: Pulling fs layer",
                                           "abc: Pull complete", "Digest: sha256:1"]
    with pytest.raises(CliError, match="^boom$"):
        list(plain_lines([{"errorDetail": {"message": "boom"}, "error": "boom"}]))


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_progress_draws_layers_and_statuses(monkeypatch) -> None:
    screen = _Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    show_progress([
        {"status": "Pulling from x", "id": "latest"},
        {"status": "Downloading", "progressDetail": {"current": 5, "total": 10}, "id": "abc"},
        {"status": "Pull complete", "progressDetail": {}, "id": "abc"},
        {"progressDetail": {}, "aux": {"Tag": "v1"}},
        {"status": "Digest: sha256:1"},
    ])
    text = screen.getvalue()
    assert "abc: Pull complete" in text and "Digest: sha256:1" in text and "latest: Pulling from x" in text
    with pytest.raises(CliError, match="^boom$"):
        show_progress([{"errorDetail": {"message": "boom"}}])
