#define _GNU_SOURCE
#include "CRunbookSys.h"
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>
#include <signal.h>
#include <sys/syscall.h>

/* close_range(2)'s flag (linux/close_range.h), for headers that lack it. */
#define CRB_CLOSE_RANGE_CLOEXEC (1u << 2)

extern char **environ;

int crb_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int crb_pidfd_send_signal(int pidfd, int sig) {
#ifdef SYS_pidfd_send_signal
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int crb_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[],
              const char *cwd, int out_fd, int err_fd) {
    return crb_spawn_io(pid, path, argv, envp, cwd, -1, out_fd, err_fd);
}

int crb_spawn_io(pid_t *pid, const char *path, char *const argv[], char *const envp[],
                 const char *cwd, int in_fd, int out_fd, int err_fd) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc != 0) return rc;
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) { posix_spawn_file_actions_destroy(&fa); return rc; }
    if (in_fd >= 0) {
        posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    } else {
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    }
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    /* The child gets 0-2 and nothing else: a descriptor some other thread opened without
       O_CLOEXEC (a script being written, a socket) is not kept open for the child's lifetime. */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
    if (cwd != NULL) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
        posix_spawn_file_actions_addchdir_np(&fa, cwd);
#endif
    }
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    rc = posix_spawnp(pid, path, &fa, &attr, argv, envp != NULL ? envp : environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return rc;
}

#include <limits.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

/// execvp's search, done in the parent (before vfork) with the parent's PATH, as posix_spawnp does.
static int crb_resolve(const char *file, char *out, size_t outlen) {
    if (file[0] == 0) return ENOENT;
    if (strchr(file, '/') != NULL) {
        if (strlen(file) >= outlen) return ENAMETOOLONG;
        strcpy(out, file);
        return 0;
    }
    const char *path = getenv("PATH");
    if (path == NULL || *path == 0) path = "/usr/local/bin:/usr/bin:/bin";
    int denied = 0;
    size_t flen = strlen(file);
    for (const char *p = path;;) {
        const char *colon = strchrnul(p, ':');
        size_t dlen = (size_t)(colon - p);
        if (dlen + 1 + flen + 1 <= outlen) {
            if (dlen == 0) { strcpy(out, file); }
            else { memcpy(out, p, dlen); out[dlen] = '/'; memcpy(out + dlen + 1, file, flen + 1); }
            struct stat st;
            if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
                if (access(out, X_OK) == 0) return 0;
                denied = 1;
            }
        }
        if (*colon == 0) break;
        p = colon + 1;
    }
    return denied ? EACCES : ENOENT;
}

int crb_spawn_bound(pid_t *pid_out, const char *file, char *const argv[], char *const envp[],
                    const char *cwd, int out_fd, int err_fd) {
    char exe[PATH_MAX];
    int rc = crb_resolve(file, exe, sizeof exe);
    if (rc != 0) return rc;
    int ep[2];
    if (pipe2(ep, O_CLOEXEC) != 0) return errno;
    char *const *env = envp != NULL ? envp : environ;
    pid_t parent = getpid();
    // No signal handler may run in the vfork child (it shares our memory): block them all until exec.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = vfork();
    if (pid == 0) {
        int err = 0;
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; s++) sigaction(s, &dfl, NULL);  /* fails harmlessly for KILL, STOP, glibc's own */
        if (setpgid(0, 0) != 0) goto fail;
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) goto fail;
        if (getppid() != parent) _exit(127);  /* the engine died before the line above */
        /* Lift every descriptor above 2 first, so a pipe that landed on 0-2 (the engine's own were
           closed) is not overwritten before it is moved into place. */
        int o = fcntl(out_fd, F_DUPFD_CLOEXEC, 3);
        int e = fcntl(err_fd, F_DUPFD_CLOEXEC, 3);
        int n0 = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int n = n0 < 0 ? -1 : fcntl(n0, F_DUPFD_CLOEXEC, 3);
        if (o < 0 || e < 0 || n < 0) goto fail;
        if (dup2(n, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) goto fail;
        /* Every other descriptor closes at exec (the error pipe stays open until then): one that
           another thread opened without O_CLOEXEC (a script being written: "Text file busy" for
           as long as this child lives; a socket) is not inherited. Kernels before 5.11 lack it. */
#ifdef SYS_close_range
        (void)syscall(SYS_close_range, 3u, ~0u, CRB_CLOSE_RANGE_CLOEXEC);
#endif
        if (cwd != NULL && chdir(cwd) != 0) goto fail;
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(exe, argv, env);
    fail:
        err = errno;
        (void)!write(ep[1], &err, sizeof err);
        _exit(127);
    }
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(ep[1]);
    if (pid < 0) { close(ep[0]); return saved; }
    int child_err = 0;
    ssize_t got;
    do { got = read(ep[0], &child_err, sizeof child_err); } while (got < 0 && errno == EINTR);
    close(ep[0]);
    if (got == (ssize_t)sizeof child_err) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        return child_err != 0 ? child_err : EIO;
    }
    *pid_out = pid;
    return 0;
}

int crb_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdint.h>

int crb_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int crb_epoll_add(int ep, int fd, uint64_t token) {
    struct epoll_event ev;
    ev.events = EPOLLIN | EPOLLHUP | EPOLLERR;
    ev.data.u64 = token;
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

int crb_epoll_del(int ep, int fd) {
    struct epoll_event ev = {0};
    return epoll_ctl(ep, EPOLL_CTL_DEL, fd, &ev);
}

int crb_epoll_wait(int ep, uint64_t *tokens, int max, int timeout_ms) {
    struct epoll_event evs[256];
    if (max > 256) max = 256;
    int n;
    do { n = epoll_wait(ep, evs, max, timeout_ms); } while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) tokens[i] = evs[i].data.u64;
    return n;
}

int crb_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

int crb_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

int crb_peek_exit(pid_t pid, int *code, int *sig) {
    siginfo_t info;
    info.si_pid = 0;
    int rc;
    do { rc = waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT); } while (rc < 0 && errno == EINTR);
    if (rc < 0) return -1;
    if (info.si_pid == 0) return 0;
    if (info.si_code == CLD_EXITED) { *code = info.si_status; *sig = 0; }
    else { *code = -1; *sig = info.si_status; }
    return 1;
}

pid_t crb_any_exited_child(void) {
    siginfo_t info;
    info.si_pid = 0;
    int rc;
    do { rc = waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT); } while (rc < 0 && errno == EINTR);
    if (rc < 0) return -1;
    return info.si_pid;
}
