"""tether's default seccomp profile, in Docker's profile format, with the rules of Docker 20.10's.

Docker's default profile is an allow-list: a syscall not named fails with EPERM. The facts here
(which names, which argument filters, which capability opens which syscalls) were read from the
config.json a Docker 20.10.24 engine on this machine handed to runc, once per added capability,
and from moby's documented rules for the other architectures; the layout is ours. `default_profile()`
returns the profile as a custom one would be written (`--security-opt seccomp=FILE`), so that one
translation (tether.runtime.seccomp) serves both.

Kept apart from Docker 20.10 on purpose:
- `socket(AF_VSOCK, ...)` is refused (Docker 23 and later do the same): on a virtual machine, vsock
  reaches the hypervisor's host side, which no container should talk to.
- `--cap-add BPF` opens bpf and `--cap-add PERFMON` opens perf_event_open, as in later Docker
  (Docker 20.10 does not know these capabilities; tether accepts them).
"""
from __future__ import annotations

from typing import Any

# A syscall named here is allowed to every container; the list spans every architecture the
# profile names (a name the running one lacks is dropped when the profile is translated).
_ALLOWED = """
_llseek _newselect accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown
chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range
creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2
epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2
fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat
fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64
fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat
get_robust_list get_thread_area getcpu getcwd getdents getdents64 getegid getegid32 geteuid
geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid
getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit getrusage
getsid getsockname getsockopt gettid gettimeofday getuid getuid32 getxattr inotify_add_watch
inotify_init inotify_init1 inotify_rm_watch io_cancel io_destroy io_getevents io_pgetevents
io_pgetevents_time64 io_setup io_submit io_uring_enter io_uring_register io_uring_setup ioctl
ioprio_get ioprio_set ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self
lchown lchown32 lgetxattr link linkat listen listxattr llistxattr lremovexattr lseek lsetxattr
lstat lstat64 madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat
mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv
msgsnd msync munlock munlockall munmap nanosleep newfstatat open openat openat2 pause pidfd_open
pidfd_send_signal pipe pipe2 poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64
process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink
readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr
rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask
rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64
rt_tgsigqueueinfo sched_get_priority_max sched_get_priority_min sched_getaffinity sched_getattr
sched_getparam sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select
semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg
sendto set_robust_list set_thread_area set_tid_address setfsgid setfsgid32 setfsuid setfsuid32
setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid setregid32
setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit setsid setsockopt
setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4
sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statx symlink
symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete
timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create
timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate
truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork
vmsplice wait4 waitid waitpid write writev
""".split()

# What an added capability opens (the capability's own checks still apply in the kernel).
_BY_CAPABILITY: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("CAP_DAC_READ_SEARCH", ("open_by_handle_at",)),
    ("CAP_SYS_ADMIN", ("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen",
                       "fspick", "lookup_dcookie", "mount", "mount_setattr", "move_mount",
                       "name_to_handle_at", "open_tree", "perf_event_open", "quotactl",
                       "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount",
                       "umount2", "unshare")),
    ("CAP_SYS_BOOT", ("reboot",)),
    ("CAP_SYS_CHROOT", ("chroot",)),
    ("CAP_SYS_MODULE", ("delete_module", "init_module", "finit_module")),
    ("CAP_SYS_PACCT", ("acct",)),
    ("CAP_SYS_PTRACE", ("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                        "process_vm_writev", "ptrace")),
    ("CAP_SYS_RAWIO", ("iopl", "ioperm")),
    ("CAP_SYS_TIME", ("settimeofday", "stime", "clock_settime")),
    ("CAP_SYS_TTY_CONFIG", ("vhangup",)),
    ("CAP_SYS_NICE", ("get_mempolicy", "mbind", "set_mempolicy")),
    ("CAP_SYSLOG", ("syslog",)),
    ("CAP_BPF", ("bpf",)),
    ("CAP_PERFMON", ("perf_event_open",)),
)

# Architecture-only syscalls, by Go's architecture names (the profile format's `arches`).
_BY_ARCHITECTURE: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("ppc64le",), ("sync_file_range2",)),
    (("arm", "arm64"), ("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2",
                        "breakpoint", "cacheflush", "set_tls")),
    (("amd64", "x32"), ("arch_prctl",)),
    (("amd64", "x32", "x86"), ("modify_ldt",)),
    (("s390", "s390x"), ("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr")),
)

# personality(2) personas a container may switch to: PER_LINUX, PER_LINUX32, UNAME26,
# UNAME26|PER_LINUX32, and 0xffffffff (the query). Others (ADDR_NO_RANDOMIZE...) are refused.
_PERSONAS = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

# clone(2) flags that make namespaces: CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET.
NAMESPACE_CLONE_FLAGS = 0x7E020000
AF_VSOCK = 40
ENOSYS = 38

# Which native architecture brings which others (a 64-bit kernel runs its 32-bit binaries too).
_ARCH_MAP = (
    ("SCMP_ARCH_X86_64", ("SCMP_ARCH_X86", "SCMP_ARCH_X32")),
    ("SCMP_ARCH_AARCH64", ("SCMP_ARCH_ARM",)),
    ("SCMP_ARCH_MIPS64", ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32")),
    ("SCMP_ARCH_MIPS64N32", ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64")),
    ("SCMP_ARCH_MIPSEL64", ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32")),
    ("SCMP_ARCH_MIPSEL64N32", ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64")),
    ("SCMP_ARCH_S390X", ("SCMP_ARCH_S390",)),
)


def _allow(names: list[str] | tuple[str, ...], **extra: Any) -> dict[str, Any]:
    return {"names": list(names), "action": "SCMP_ACT_ALLOW", **extra}


def _arg(index: int, value: int, op: str) -> dict[str, Any]:
    return {"index": index, "value": value, "op": op}


def default_profile() -> dict[str, Any]:
    """The default profile as a fresh dict (callers may keep or change it)."""
    not_sys_admin = {"caps": ["CAP_SYS_ADMIN"]}
    syscalls: list[dict[str, Any]] = [
        _allow(_ALLOWED),
        # ptrace of one's own children is safe once the kernel checks seccomp after it (4.8)
        _allow(["ptrace"], includes={"minKernel": "4.8"}),
        _allow(["socket"], args=[_arg(0, AF_VSOCK, "SCMP_CMP_NE")]),
        *(_allow(["personality"], args=[_arg(0, persona, "SCMP_CMP_EQ")]) for persona in _PERSONAS),
        *(_allow(names, includes={"arches": list(arches)}) for arches, names in _BY_ARCHITECTURE),
        *(_allow(names, includes={"caps": [cap]}) for cap, names in _BY_CAPABILITY),
        # without CAP_SYS_ADMIN, clone may make processes and threads but no namespaces; s390
        # passes the flags second
        _allow(["clone"], args=[_arg(0, NAMESPACE_CLONE_FLAGS, "SCMP_CMP_MASKED_EQ")],
               excludes={**not_sys_admin, "arches": ["s390", "s390x"]}),
        _allow(["clone"], args=[_arg(1, NAMESPACE_CLONE_FLAGS, "SCMP_CMP_MASKED_EQ")],
               includes={"arches": ["s390", "s390x"]}, excludes=not_sys_admin),
        # clone3 passes its flags in memory, out of a filter's reach: ENOSYS makes libc fall back
        # to clone, whose flags the rule above checks
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS,
         "excludes": not_sys_admin},
    ]
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "archMap": [{"architecture": arch, "subArchitectures": list(subs)}
                    for arch, subs in _ARCH_MAP],
        "syscalls": syscalls,
    }
