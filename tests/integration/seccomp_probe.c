/* Seccomp probe: tries syscalls a container's filter allows or refuses, each in a child of its own,
 * and prints "name errno" (0 = the call succeeded). Every call is given arguments that make it
 * harmless even where the filter and the capabilities let it through: paths that do not exist,
 * invalid magic numbers, clock ids and flags, bad file descriptors. Namespaces it makes die with
 * the child. Run with no argument: all probes, in order. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
#ifndef __NR_clone3
#define __NR_clone3 435
#endif
#ifndef __NR_open_tree
#define __NR_open_tree 428
#endif
#ifndef __NR_fsopen
#define __NR_fsopen 430
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif
#ifndef __NR_mount_setattr
#define __NR_mount_setattr 442
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

#define MISSING "/tether-probe-does-not-exist"

static long r;

/* a clone that makes a process: the new process leaves at once */
static long clone_flags(unsigned long flags) {
    long pid = syscall(__NR_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    return pid;
}

static long probe(const char *name) {
    struct timespec ts = {0, 0};
    struct { long sec; long usec; } bad_tv = {0, 2000000};
    if (!strcmp(name, "unshare_user")) return syscall(__NR_unshare, CLONE_NEWUSER);
    if (!strcmp(name, "unshare_mount")) return syscall(__NR_unshare, CLONE_NEWNS);
    if (!strcmp(name, "unshare_none")) return syscall(__NR_unshare, 0);
    if (!strcmp(name, "clone_plain")) return clone_flags(0);
    if (!strcmp(name, "clone_newuser")) return clone_flags(CLONE_NEWUSER);
    if (!strcmp(name, "clone_newns")) return clone_flags(CLONE_NEWNS);
    if (!strcmp(name, "clone3")) return syscall(__NR_clone3, NULL, 0);
    if (!strcmp(name, "setns")) return syscall(__NR_setns, -1, 0);
    if (!strcmp(name, "keyctl")) return syscall(__NR_keyctl, 9999, 0, 0, 0, 0);
    if (!strcmp(name, "add_key"))
        return syscall(__NR_add_key, "tether-no-such-type", "d", NULL, 0, -2);
    if (!strcmp(name, "request_key"))
        return syscall(__NR_request_key, "tether-no-such-type", "d", NULL, -2);
    if (!strcmp(name, "mount")) return syscall(__NR_mount, "none", MISSING, "tmpfs", 0, NULL);
    if (!strcmp(name, "umount2")) return syscall(__NR_umount2, MISSING, 0);
    if (!strcmp(name, "pivot_root")) return syscall(__NR_pivot_root, MISSING, MISSING);
    if (!strcmp(name, "chroot")) return syscall(__NR_chroot, MISSING);
    if (!strcmp(name, "open_tree")) return syscall(__NR_open_tree, -1, MISSING, 0);
    if (!strcmp(name, "fsopen")) return syscall(__NR_fsopen, "tether-no-such-fs", 0);
    if (!strcmp(name, "mount_setattr")) return syscall(__NR_mount_setattr, -1, "", 0, NULL, 0);
    if (!strcmp(name, "name_to_handle_at"))
        return syscall(__NR_name_to_handle_at, AT_FDCWD, MISSING, NULL, NULL, 0);
    if (!strcmp(name, "open_by_handle_at")) return syscall(__NR_open_by_handle_at, -1, NULL, 0);
    if (!strcmp(name, "ptrace")) return syscall(__NR_ptrace, 2 /* PEEKDATA */, -1, 0, 0);
    if (!strcmp(name, "process_vm_readv"))
        return syscall(__NR_process_vm_readv, getpid(), NULL, 0, NULL, 0, 0);
    if (!strcmp(name, "kcmp")) return syscall(__NR_kcmp, getpid(), getpid(), 99, 0, 0);
    if (!strcmp(name, "pidfd_getfd")) return syscall(__NR_pidfd_getfd, -1, 0, 0);
    if (!strcmp(name, "personality_linux")) return syscall(__NR_personality, 0x0);
    if (!strcmp(name, "personality_linux32")) return syscall(__NR_personality, 0x8);
    if (!strcmp(name, "personality_query")) return syscall(__NR_personality, 0xffffffffUL);
    if (!strcmp(name, "personality_no_aslr")) return syscall(__NR_personality, 0x40000);
    if (!strcmp(name, "personality_exec")) return syscall(__NR_personality, 0x400000);
    if (!strcmp(name, "bpf")) return syscall(__NR_bpf, 9999, NULL, 0);
    if (!strcmp(name, "perf_event_open"))
        return syscall(__NR_perf_event_open, NULL, 0, -1, -1, 0);
    if (!strcmp(name, "userfaultfd")) return syscall(__NR_userfaultfd, 0x7fffffff);
    if (!strcmp(name, "clock_settime")) return syscall(__NR_clock_settime, 9999, &ts);
    if (!strcmp(name, "settimeofday")) return syscall(__NR_settimeofday, &bad_tv, NULL);
    if (!strcmp(name, "clock_adjtime")) return syscall(__NR_clock_adjtime, 9999, NULL);
    if (!strcmp(name, "reboot")) return syscall(__NR_reboot, 0, 0, 0, NULL);
    if (!strcmp(name, "kexec_load")) return syscall(__NR_kexec_load, 0, 1000, NULL, 0xdead0000UL);
    if (!strcmp(name, "kexec_file_load"))
        return syscall(__NR_kexec_file_load, -1, -1, 0, NULL, 0xdead0000UL);
    if (!strcmp(name, "init_module")) return syscall(__NR_init_module, NULL, 0, "");
    if (!strcmp(name, "delete_module"))
        return syscall(__NR_delete_module, "tether_no_such_mod", O_NONBLOCK);
    if (!strcmp(name, "swapon")) return syscall(__NR_swapon, MISSING, 0);
    if (!strcmp(name, "swapoff")) return syscall(__NR_swapoff, MISSING);
    if (!strcmp(name, "acct")) return syscall(__NR_acct, MISSING);
    if (!strcmp(name, "iopl")) return syscall(__NR_iopl, 4);
    if (!strcmp(name, "ioperm")) return syscall(__NR_ioperm, 0x10000, 1, 1);
    if (!strcmp(name, "syslog")) return syscall(__NR_syslog, 10 /* SIZE_BUFFER */, NULL, 0);
    if (!strcmp(name, "sethostname")) return syscall(__NR_sethostname, NULL, 99999);
    if (!strcmp(name, "quotactl")) return syscall(__NR_quotactl, 0, NULL, 0, NULL);
    if (!strcmp(name, "get_mempolicy")) return syscall(__NR_get_mempolicy, NULL, NULL, 0, NULL, 0);
    if (!strcmp(name, "io_uring_setup")) return syscall(__NR_io_uring_setup, 0, NULL);
    if (!strcmp(name, "cachestat")) return syscall(__NR_cachestat, -1, NULL, NULL, 0);
    if (!strcmp(name, "socket_vsock")) return socket(AF_VSOCK, SOCK_STREAM, 0);
    if (!strcmp(name, "socket_unix")) return socket(AF_UNIX, SOCK_STREAM, 0);
    if (!strcmp(name, "socket_netlink_audit")) return socket(AF_NETLINK, SOCK_RAW, 9);
    fprintf(stderr, "unknown probe %s\n", name);
    exit(2);
}

static const char *probes[] = {
    "unshare_user", "unshare_mount", "unshare_none", "clone_plain", "clone_newuser", "clone_newns",
    "clone3", "setns", "keyctl", "add_key", "request_key", "mount", "umount2", "pivot_root",
    "chroot", "open_tree", "fsopen", "mount_setattr", "name_to_handle_at", "open_by_handle_at",
    "ptrace", "process_vm_readv", "kcmp", "pidfd_getfd", "personality_linux",
    "personality_linux32", "personality_query", "personality_no_aslr", "personality_exec", "bpf",
    "perf_event_open", "userfaultfd", "clock_settime", "settimeofday", "clock_adjtime", "reboot",
    "kexec_load", "kexec_file_load", "init_module", "delete_module", "swapon", "swapoff", "acct",
    "iopl", "ioperm", "syslog", "sethostname", "quotactl", "get_mempolicy", "io_uring_setup",
    "cachestat", "socket_vsock", "socket_unix", "socket_netlink_audit", NULL,
};

int main(void) {
    for (const char **p = probes; *p; p++) {
        int pipefd[2];
        if (pipe(pipefd) != 0) return 1;
        pid_t pid = fork();
        if (pid == 0) {
            close(pipefd[0]);
            errno = 0;
            r = probe(*p);
            int err = r < 0 ? errno : 0;
            (void)!write(pipefd[1], &err, sizeof err);
            _exit(0);
        }
        close(pipefd[1]);
        int err = -1;
        if (read(pipefd[0], &err, sizeof err) != sizeof err) err = -1;  /* killed: no answer */
        close(pipefd[0]);
        waitpid(pid, NULL, 0);
        printf("%s %d\n", *p, err);
    }
    return 0;
}
