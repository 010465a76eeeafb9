"""runc's error for an exec that could not start, told apart from the process's own stderr."""
from tether.rules.errors import exec_start_failure, runc_exec_error

NOT_FOUND = ('{"level":"error","msg":"exec failed: unable to start container process: exec: '
             '\\"nope\\": executable file not found in $PATH","time":"2026-12-07T19:40:04Z"}\n')


def test_runc_error_line_is_found():
    assert runc_exec_error('{"level":"warning","msg":"x"}\n' + NOT_FOUND) == (
        'exec failed: unable to start container process: exec: "nope": executable file not '
        'found in $PATH')


def test_process_output_is_not_runc_error():
    assert runc_exec_error("exec failed: but printed by the process\n") is None
    assert runc_exec_error('{"level":"error","msg":"something else"}\n') is None
    assert runc_exec_error('["level","error"]\n{not json\n') is None
    assert runc_exec_error("") is None


def test_dockerd_text():
    assert exec_start_failure("exec failed: x") == "OCI runtime exec failed: exec failed: x: unknown"

