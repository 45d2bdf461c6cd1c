#ifndef CRUNBOOKSYS_H
#define CRUNBOOKSYS_H
#include <sys/types.h>

/// Opens a pidfd for `pid` (Linux 5.3+). Returns -1 and sets errno on failure.
int crb_pidfd_open(pid_t pid);
/// Sends `sig` to the process a pidfd refers to, and never to a later process that took its pid
/// (Linux 5.1+). Returns 0, or -1 and sets errno (ESRCH: it has exited).
int crb_pidfd_send_signal(int pidfd, int sig);

/// Spawns argv[0] (searched in PATH when it has no slash) as the leader of a new
/// process group, with stdin from /dev/null and stdout/stderr to the given fds.
/// `envp` may be NULL to inherit; `cwd` may be NULL. Returns 0 and sets *pid, or an errno.
int crb_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[],
              const char *cwd, int out_fd, int err_fd);


/// Like crb_spawn, and the child gets PR_SET_PDEATHSIG(SIGKILL): it dies when the thread that
/// spawned it ends (call it from a thread that lives as long as the process), so no command outlives
/// a killed engine. Returns 0 and sets *pid, or an errno (ENOENT, EACCES, ETXTBSY, ...).
int crb_spawn_bound(pid_t *pid, const char *path, char *const argv[], char *const envp[],
                    const char *cwd, int out_fd, int err_fd);

/// pipe2(fds, O_CLOEXEC): both ends close on exec, so children only see the ends dup'ed onto 1 and 2.
int crb_pipe_cloexec(int fds[2]);
/// Like crb_spawn, with stdin from `in_fd` (or /dev/null when it is -1).
int crb_spawn_io(pid_t *pid, const char *path, char *const argv[], char *const envp[],
                 const char *cwd, int in_fd, int out_fd, int err_fd);
#include <stdint.h>
/// epoll_create1(EPOLL_CLOEXEC).
int crb_epoll_create(void);
/// Watches fd for input, hang-up and error (level-triggered); `token` comes back from crb_epoll_wait.
int crb_epoll_add(int ep, int fd, uint64_t token);
int crb_epoll_del(int ep, int fd);
/// Waits (EINTR retried); writes up to `max` (at most 256) tokens; returns their count or -1.
int crb_epoll_wait(int ep, uint64_t *tokens, int max, int timeout_ms);
/// eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), to wake the watcher.
int crb_eventfd(void);
/// prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants become this process's children.
int crb_set_child_subreaper(void);
/// Reads how `pid` ended without reaping it (waitid WNOWAIT). 1 when it has ended (code, or -1 and sig), 0 when not, -1 on error.
int crb_peek_exit(pid_t pid, int *code, int *sig);
/// The pid of some ended child, not reaped (0 when none, -1 with no children).
pid_t crb_any_exited_child(void);
#endif
