"""tetherd's --seccomp-profile and --no-new-privileges: read and checked once at start-up."""
from __future__ import annotations

from pathlib import Path

import pytest

from tether.daemon import _security, parse_args


def test_defaults() -> None:
    security = _security(parse_args([]))
    assert (security.seccomp_profile, security.no_new_privileges) == (None, False)
    assert security.info_options() == ["name=seccomp,profile=default"]


@pytest.mark.parametrize("flags,expected", [(["--no-new-privileges"], True),
                                            (["--no-new-privileges=false"], False),
                                            (["--no-new-privileges", "true"], True)])
def test_no_new_privileges_flag(flags: list[str], expected: bool) -> None:
    assert _security(parse_args(flags)).no_new_privileges is expected


def test_profile_read_once(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    security = _security(parse_args(["--seccomp-profile", str(path)]))
    assert security.seccomp_profile == '{"defaultAction": "SCMP_ACT_ALLOW"}'
    assert security.info_options() == [f"name=seccomp,profile={path}"]


def test_missing_profile_stops_the_daemon_with_dockerds_text(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(SystemExit) as err:
        _security(parse_args(["--seccomp-profile", str(missing)]))
    assert str(err.value) == (f"tetherd: opening seccomp profile ({missing}) failed: "
                              f"open {missing}: no such file or directory")


def test_unusable_profile_stops_the_daemon(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"], '
                    '"archMap": [{"architecture": "x"}]}')
    with pytest.raises(SystemExit, match="'architectures' and 'archMap' were specified"):
        _security(parse_args(["--seccomp-profile", str(path)]))
