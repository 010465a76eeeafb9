"""Docker-format seccomp profiles -> OCI (tether.runtime.seccomp) and tether's default profile."""
from __future__ import annotations

import json

import pytest

from tether.runtime import seccomp, seccomp_host
from tether.runtime.seccomp import Machine, ProfileError, load_profile, to_oci
from tether.runtime.seccomp_default import default_profile
from tether.runtime.oci import DEFAULT_CAPABILITIES

AMD64 = Machine(arch="amd64", kernel=(6, 1))


def allowed(oci: dict, name: str) -> list[dict]:
    """The rules of `oci` naming `name`."""
    return [r for r in oci["syscalls"] if name in r["names"]]


def test_default_profile_for_default_caps() -> None:
    oci = to_oci(default_profile(), DEFAULT_CAPABILITIES, AMD64)
    assert oci["defaultAction"] == "SCMP_ACT_ERRNO" and "defaultErrnoRet" not in oci
    assert oci["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    for name in ("mount", "unshare", "setns", "keyctl", "add_key", "bpf", "reboot", "userfaultfd"):
        assert allowed(oci, name) == [], name
    assert allowed(oci, "clone") == [{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
        {"index": 0, "value": 0x7E020000, "op": "SCMP_CMP_MASKED_EQ"}]}]
    assert allowed(oci, "clone3") == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO",
                                       "errnoRet": 38}]
    personas = sorted(r["args"][0]["value"] for r in allowed(oci, "personality"))
    assert personas == [0, 8, 0x20000, 0x20008, 0xFFFFFFFF]
    assert allowed(oci, "socket") == [{"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                                       "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]}]
    assert allowed(oci, "chroot") and allowed(oci, "arch_prctl") and allowed(oci, "ptrace")
    assert not allowed(oci, "s390_runtime_instr") and not allowed(oci, "set_tls")


def test_sys_admin_opens_namespaces_and_mounts() -> None:
    oci = to_oci(default_profile(), [*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"], AMD64)
    for name in ("mount", "umount2", "unshare", "setns", "clone3", "sethostname", "bpf"):
        assert [r["action"] for r in allowed(oci, name)] == ["SCMP_ACT_ALLOW"], name
    assert [r.get("args") for r in allowed(oci, "clone")] == [None]  # the flag filter goes


@pytest.mark.parametrize("cap,names", [("CAP_SYS_PTRACE", ["kcmp", "process_vm_readv"]),
                                       ("CAP_SYS_TIME", ["clock_settime", "settimeofday"]),
                                       ("CAP_SYS_MODULE", ["init_module", "delete_module"]),
                                       ("CAP_SYS_BOOT", ["reboot"]), ("CAP_BPF", ["bpf"]),
                                       ("CAP_DAC_READ_SEARCH", ["open_by_handle_at"])])
def test_a_capability_opens_its_syscalls(cap: str, names: list[str]) -> None:
    without = to_oci(default_profile(), DEFAULT_CAPABILITIES, AMD64)
    with_cap = to_oci(default_profile(), [*DEFAULT_CAPABILITIES, cap], AMD64)
    for name in names:
        assert not allowed(without, name) and allowed(with_cap, name), name


def test_dropping_sys_chroot_closes_chroot() -> None:
    caps = [c for c in DEFAULT_CAPABILITIES if c != "CAP_SYS_CHROOT"]
    assert not allowed(to_oci(default_profile(), caps, AMD64), "chroot")


def test_arches_select_rules_and_sub_architectures() -> None:
    arm64 = to_oci(default_profile(), DEFAULT_CAPABILITIES, Machine("arm64", (6, 1)))
    assert arm64["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert allowed(arm64, "set_tls") and not allowed(arm64, "arch_prctl")
    s390x = to_oci(default_profile(), DEFAULT_CAPABILITIES, Machine("s390x", (6, 1)))
    assert [r["args"][0]["index"] for r in allowed(s390x, "clone")] == [1]
    unknown = to_oci(default_profile(), DEFAULT_CAPABILITIES, Machine("sparc64", (6, 1)))
    assert "architectures" not in unknown  # libseccomp takes the native one


def test_min_kernel_against_the_running_kernel() -> None:
    old = to_oci(default_profile(), DEFAULT_CAPABILITIES, Machine("amd64", (4, 4)))
    assert not allowed(old, "ptrace")
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["a"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.10"}},
        {"names": ["b"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.10"}}]}
    def names(kernel: tuple[int, int]) -> list[list[str]]:
        return [r["names"] for r in to_oci(profile, [], Machine("amd64", kernel))["syscalls"]]
    assert names((5, 4)) == [["a"]]
    assert names((5, 10)) == [["b"]]


def test_includes_need_every_cap_excludes_any() -> None:
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["both"], "action": "SCMP_ACT_ALLOW",
         "includes": {"caps": ["CAP_A", "CAP_B"]}},
        {"names": ["neither"], "action": "SCMP_ACT_ALLOW",
         "excludes": {"caps": ["CAP_A", "CAP_B"]}}]}

    def names(caps: list[str]) -> list[str]:
        return [r["names"][0] for r in to_oci(profile, caps, AMD64)["syscalls"]]
    assert names(["CAP_A"]) == []
    assert names(["CAP_A", "CAP_B"]) == ["both"]
    assert names([]) == ["neither"]


def test_unknown_names_dropped_and_rule_without_names_goes() -> None:
    machine = Machine("amd64", (6, 1), known=lambda n: n != "nosuchcall")
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
        {"names": ["nosuchcall", "read"], "action": "SCMP_ACT_ALLOW"},
        {"name": "nosuchcall", "action": "SCMP_ACT_ALLOW"},
        {"name": "write", "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
         "args": [{"index": 0, "value": 1, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}]}
    assert to_oci(profile, [], machine) == {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}


def test_empty_profile_means_no_filter() -> None:
    assert to_oci(load_profile("{}"), [], AMD64) is None
    assert to_oci(load_profile("null"), [], AMD64) is None


def test_architectures_given_directly() -> None:
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"]}
    assert to_oci(profile, [], AMD64)["architectures"] == ["SCMP_ARCH_X86_64"]


@pytest.mark.parametrize("profile,message", [
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
      "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]},
     "'architectures' and 'archMap' were specified in the seccomp profile, use either "
     "'architectures' or 'archMap'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"]}]},
     "'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'"),
])
def test_translation_refusals(profile: dict, message: str) -> None:
    with pytest.raises(ProfileError) as err:
        to_oci(profile, [], AMD64)
    assert str(err.value) == message


@pytest.mark.parametrize("text,message", [
    ("[]", "json: cannot unmarshal array into Go value of type seccomp.Seccomp"),
    ('{"syscalls": "x"}', "json: cannot unmarshal string into Go struct field Seccomp.syscalls "
                          "of type []*seccomp.Syscall"),
    ('{"syscalls": [{"names": "read"}]}', "json: cannot unmarshal string into Go struct field "
                                          "Syscall.syscalls.names of type []string"),
    ('{"syscalls": [{"errnoRet": -1}]}', "json: cannot unmarshal number -1 into Go struct field "
                                         "Syscall.syscalls.errnoRet of type uint"),
    ('{"defaultAction": 1}', "json: cannot unmarshal number into Go struct field "
                             "Seccomp.defaultAction of type specs.LinuxSeccompAction"),
    ('{"syscalls": [{"includes": {"minKernel": "4"}}]}',
     'invalid kernel version: "4", expected "<kernel>.<major>"'),
    ('{"syscalls": [{"includes": {"minKernel": "0.0"}}]}',
     'invalid kernel version: "0.0", expected "<kernel>.<major>": version cannot be 0.0'),
])
def test_decoding_refusals_in_dockerds_words(text: str, message: str) -> None:
    with pytest.raises(ProfileError) as err:
        load_profile(text)
    assert str(err.value) == "Decoding seccomp profile failed: " + message


@pytest.mark.parametrize("text,message", [
    ("{bad", "invalid character 'b' looking for beginning of object key string"),
    ("{", "unexpected end of JSON input"),
    ('{"a" 1}', "invalid character '1' after object key"),
    ('{"a": [1, {"b": "}"} 3]}', "invalid character '3' after array element"),
    ('{"a": 1 "b"}', "invalid character '\"' after object key:value pair"),
    ("{} x", "invalid character 'x' after top-level value"),
    ('{"a": 1,}', "invalid character '}' looking for beginning of object key string"),
    ('{"a": NaN}', "invalid character 'N' looking for beginning of value"),
    ('"a\nb"', "invalid character '\\n' in string literal"),
    ('{"a": "\\q"}', "invalid character 'q' in string escape code"),
    ("{'a'}", "invalid character '\\'' looking for beginning of object key string"),
])
def test_invalid_json_refused_in_gos_words(text: str, message: str) -> None:
    with pytest.raises(ProfileError) as err:
        load_profile(text)
    assert str(err.value) == "Decoding seccomp profile failed: " + message


def test_default_profile_round_trips_as_a_custom_one() -> None:
    """The built-in profile is a valid profile file: written and read back, it translates alike."""
    text = json.dumps(default_profile())
    assert to_oci(load_profile(text), DEFAULT_CAPABILITIES, AMD64) == \
        to_oci(default_profile(), DEFAULT_CAPABILITIES, AMD64)


@pytest.mark.parametrize("release,version", [("6.1.0-13-amd64", (6, 1)), ("3.12-1-amd64", (3, 12)),
                                             ("6.18.44-fc-v1300", (6, 18)), ("5.4", (5, 4))])
def test_kernel_version(release: str, version: tuple[int, int]) -> None:
    assert seccomp.kernel_version(release) == version


def test_go_arch() -> None:
    assert [seccomp.go_arch(m) for m in ("x86_64", "aarch64", "armv7l", "i686", "s390x")] == \
        ["amd64", "arm64", "arm", "x86", "s390x"]


def test_translated_once_per_profile_and_capability_set() -> None:
    first = seccomp_host.oci_section(None, DEFAULT_CAPABILITIES)
    assert seccomp_host.oci_section(None, list(reversed(DEFAULT_CAPABILITIES))) is first
    admin = seccomp_host.oci_section(None, [*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"])
    assert admin is not first and admin != first
    custom = '{"defaultAction": "SCMP_ACT_ALLOW"}'
    assert seccomp_host.oci_section(custom, []) is seccomp_host.oci_section(custom, [])


def test_this_machines_libseccomp_decides_known_names() -> None:
    assert seccomp_host.knows("read") and seccomp_host.knows("clone3")
    assert not seccomp_host.knows("tether_no_such_syscall")
