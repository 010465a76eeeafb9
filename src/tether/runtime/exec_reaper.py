"""The parent a tty exec's process needs: `python exec_reaper.py <pid-file> <runc argv...>`.

A tty exec must reach the daemon as the container terminal's own master (so the terminal keeps the
termios the kernel gives a new pty, as under Docker's shim); runc hands that master over only when
it runs detached (`exec -d --console-socket`), and then exits, leaving the process an orphan. This
helper is that orphan's subreaper: it runs runc, waits for the process runc started (its pid from
`--pid-file`) and exits with the process's status (128+N for signal N), so the daemon reads the
exit code as it reads any child's. runc's own failure ends it with runc's status, runc's error on
its stderr. Run by path with `python -I -S`: stdlib only, no tether import.
"""
import ctypes
import os
import sys

_PR_SET_CHILD_SUBREAPER = 36


def main(argv: list[str]) -> int:
    pid_file, runc_argv = argv[0], argv[1:]
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("exec_reaper: prctl: " + os.strerror(ctypes.get_errno()), file=sys.stderr)
        return 255
    # posix_spawn, not subprocess (a slower import): the process spec's pipe (`--process
    # /dev/fd/N`, inheritable) and stderr are passed on to runc, stdin and stdout are /dev/null
    runc = os.posix_spawn(runc_argv[0], runc_argv, os.environ, file_actions=[
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
    _, status = os.waitpid(runc, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        return 255 if code < 0 else code
    with open(pid_file) as f:
        pid = int(f.read())
    while True:  # the process, reparented here when runc exited; other orphans are reaped too
        reaped, status = os.wait()
        if reaped == pid:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
