"""HostConfig.SecurityOpt as dockerd 20.10 reads it (tether.engine.securityopt)."""
from __future__ import annotations

import pytest

from tether.engine import securityopt
from tether.engine.securityopt import DaemonSecurity, SecurityOptions, parse
from tether.rules.errors import ApiError


@pytest.mark.parametrize("opts,expected", [
    (None, SecurityOptions()),
    (["no-new-privileges"], SecurityOptions(no_new_privileges=True)),
    (["no-new-privileges=true"], SecurityOptions(no_new_privileges=True)),
    (["no-new-privileges:TRUE"], SecurityOptions(no_new_privileges=True)),
    (["no-new-privileges=0"], SecurityOptions(no_new_privileges=False)),
    (["no-new-privileges", "no-new-privileges=f"], SecurityOptions(no_new_privileges=False)),
    (["seccomp=unconfined"], SecurityOptions(seccomp="unconfined")),
    (["seccomp:unconfined"], SecurityOptions(seccomp="unconfined")),
    (['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}'],
     SecurityOptions(seccomp='{"defaultAction":"SCMP_ACT_ALLOW"}')),
    (["apparmor=foo"], SecurityOptions(apparmor="foo")),
    (["label=disable", "label:user:x", "disable"], SecurityOptions()),
])
def test_accepted(opts, expected) -> None:
    assert parse(opts) == expected


@pytest.mark.parametrize("opt,message", [
    ("bogus", 'invalid --security-opt 1: "bogus"'),
    ("label", 'invalid --security-opt 1: "label"'),
    ("bogus=1", 'invalid --security-opt 2: "bogus=1"'),
    ("no-new-privileges=yes", 'invalid --security-opt 2: "no-new-privileges=yes"'),
    ("no-new-privileges:", 'invalid --security-opt 2: "no-new-privileges:"'),
    ("=x", 'invalid --security-opt 2: "=x"'),
    ('mask="a"', 'invalid --security-opt 2: "mask=\\"a\\""'),
])
def test_refused_with_dockerds_text(opt: str, message: str) -> None:
    with pytest.raises(ApiError) as err:
        parse(["no-new-privileges", opt])
    assert (err.value.status, err.value.message) == (500, message)


@pytest.mark.parametrize("opts,message", [
    ("x", "json: cannot unmarshal string into Go struct field HostConfig.HostConfig.SecurityOpt "
          "of type []string"),
    ([1], "json: cannot unmarshal number into Go struct field HostConfig.HostConfig.SecurityOpt "
          "of type string"),
])
def test_wrong_types(opts, message: str) -> None:
    with pytest.raises(ApiError) as err:
        parse(opts)
    assert (err.value.status, err.value.message) == (500, message)


@pytest.mark.parametrize("host_config,expected", [
    ({}, None),
    ({"SecurityOpt": ["apparmor=x"]}, ["apparmor=x"]),
    ({"Privileged": True}, ["label=disable"]),
    ({"Privileged": True, "SecurityOpt": ["seccomp=unconfined"]},
     ["seccomp=unconfined", "label=disable"]),
    ({"Privileged": True, "SecurityOpt": ["label=user:x"]}, ["label=user:x"]),
    ({"Privileged": True, "SecurityOpt": ["label:level:s0"]}, ["label:level:s0", "label=disable"]),
    ({"PidMode": "host"}, ["label=disable"]),
    ({"IpcMode": "host"}, ["label=disable"]),
])
def test_generated_label(host_config, expected) -> None:
    assert securityopt.with_generated_label(host_config) == expected


@pytest.mark.parametrize("options,privileged,daemon,expected", [
    (SecurityOptions(), False, None, (True, None)),
    (SecurityOptions(), False, "{}", (True, "{}")),
    (SecurityOptions(seccomp="[1]"), False, "{}", (True, "[1]")),
    (SecurityOptions(seccomp=""), False, "{}", (True, "{}")),
    (SecurityOptions(seccomp="unconfined"), False, "{}", (False, None)),
    (SecurityOptions(seccomp="[1]"), True, None, (False, None)),
])
def test_seccomp_profile_choice(options, privileged, daemon, expected) -> None:
    assert securityopt.seccomp_profile(options, privileged, daemon) == expected


def test_apparmor_profile_and_info() -> None:
    assert securityopt.apparmor_profile(["apparmor=foo"]) == "foo"
    assert securityopt.apparmor_profile(["bogus"]) == ""
    assert DaemonSecurity().info_options() == ["name=seccomp,profile=default"]
    assert DaemonSecurity(seccomp_profile_path="/etc/p.json").info_options() == \
        ["name=seccomp,profile=/etc/p.json"]


MASKED, READONLY = ("/proc/keys",), ("/proc/sys",)


@pytest.mark.parametrize("host_config,expected", [
    ({}, {"MaskedPaths": ["/proc/keys"], "ReadonlyPaths": ["/proc/sys"]}),
    ({"MaskedPaths": [], "ReadonlyPaths": []}, {"MaskedPaths": [], "ReadonlyPaths": []}),
    ({"Privileged": True}, {"MaskedPaths": None, "ReadonlyPaths": None}),
    ({"Privileged": True, "MaskedPaths": ["/x"]}, {"MaskedPaths": ["/x"], "ReadonlyPaths": None}),
])
def test_system_paths_stored_as_dockerd(host_config, expected) -> None:
    assert securityopt.system_paths(host_config, MASKED, READONLY) == expected


def test_system_paths_wrong_type() -> None:
    with pytest.raises(ApiError, match="^json: cannot unmarshal string into Go struct field "
                                       r"HostConfig.HostConfig.MaskedPaths of type \[\]string$"):
        securityopt.system_paths({"MaskedPaths": "/x"}, MASKED, READONLY)
