#ifndef CRUNBOOKSYS_H
#define CRUNBOOKSYS_H
#include <sys/types.h>

/// Opens a pidfd for `pid` (Linux 5.3+). Returns -1 and sets errno on failure.
int crb_pidfd_open(pid_t pid);

/// Spawns argv[0] (searched in PATH when it has no slash) as the leader of a new
/// process group, with stdin from /dev/null and stdout/stderr to the given fds.
/// `envp` may be NULL to inherit; `cwd` may be NULL. Returns 0 and sets *pid, or an errno.
int crb_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[],
              const char *cwd, int out_fd, int err_fd);


/// pipe2(fds, O_CLOEXEC): both ends close on exec, so children only see the ends dup'ed onto 1 and 2.
int crb_pipe_cloexec(int fds[2]);
/// Like crb_spawn, with stdin from `in_fd` (or /dev/null when it is -1).
int crb_spawn_io(pid_t *pid, const char *path, char *const argv[], char *const envp[],
                 const char *cwd, int in_fd, int out_fd, int err_fd);
#endif
