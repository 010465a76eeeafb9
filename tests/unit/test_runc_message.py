"""runc's stderr as a runtime failure's text: the last error-level message, as containerd gives
it to dockerd (Docker 20.10 shows only `runc create failed: ...` when nsexec logged a refused
oom_score_adj before it)."""
from __future__ import annotations

from tether.runtime.conmon import _runc_message


def test_last_error_message_wins() -> None:
    stderr = ('time="2026-12-08T02:40:00Z" level=error msg="nsexec[23997]: failed to update '
              '/proc/self/oom_score_adj: Permission denied"\n'
              'time="2026-12-08T02:40:00Z" level=error msg="runc create failed: unable to start '
              'container process: can\'t get final child\'s PID from pipe: EOF"\n')
    assert _runc_message(stderr) == ("runc create failed: unable to start container process: "
                                     "can't get final child's PID from pipe: EOF")


def test_warnings_are_not_the_error() -> None:
    stderr = ('time="t" level=error msg="exec: \\"nosuch\\": executable file not found in $PATH"\n'
              'time="t" level=warning msg="a later warning"\n')
    assert _runc_message(stderr) == 'exec: "nosuch": executable file not found in $PATH'


def test_plain_text_is_kept() -> None:
    assert _runc_message("  container not running\n") == "container not running"
    assert _runc_message('msg="no level"') == "no level"


def test_go_escapes_json_lacks_keep_the_text() -> None:
    """Go's %q may write `\\x01` or `\\a` (a command name from an image): no ValueError."""
    stderr = 'time="t" level=error msg="exec: \\"a\\x01b\\": executable file not found"\n'
    assert _runc_message(stderr) == 'exec: \\"a\\x01b\\": executable file not found'
