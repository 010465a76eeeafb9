"""dockerd's text for a container the runtime could not create."""
from tether.rules.errors import MOUNT_TYPE_HINT, runtime_create_error, runtime_create_status


def test_runtime_message_is_wrapped_as_dockerd_does() -> None:
    assert runtime_create_error('runc create failed: exec: "x": not found') == \
        'failed to create shim task: OCI runtime create failed: runc create failed: exec: "x": ' \
        "not found: unknown"


def test_not_a_directory_gets_the_mount_type_hint() -> None:
    text = runtime_create_error('error mounting "/f" to rootfs at "/etc": Not a directory')
    assert text.endswith(": unknown: " + MOUNT_TYPE_HINT)
    assert MOUNT_TYPE_HINT.startswith("Are you trying to mount a directory onto a file")


def test_runtime_create_status_as_dockerd() -> None:
    """translateContainerdStartErr: the request's fault is 400, a runtime refusal 500."""
    assert runtime_create_status('exec: "x": executable file not found in $PATH') == 400
    assert runtime_create_status("open /x: permission denied") == 400
    assert runtime_create_status('sysctl "kernel.foo" is not in a separate kernel namespace') == 500
    assert runtime_create_status("wrong rlimit value: RLIMIT_FOO") == 500
