/*
 * hako-pty: runs a command on a new pseudo-terminal inside the guest and relays the
 * terminal over its own stdin/stdout. The agent is Node, which can neither allocate a
 * pty (no ioctl) nor receive a console fd from crun, so this small helper does it.
 *
 * usage: hako-pty [--rows N] [--cols N] [--raw] -- COMMAND [ARG...]
 * --raw puts the new terminal in raw mode (no echo, no line editing): for a command,
 * such as crun in terminal mode, that relays to a terminal of its own.
 * fd 3, when open, carries window sizes as lines "ROWS COLS\n" (TIOCSWINSZ on the
 * master, which sends SIGWINCH to the terminal's foreground process group).
 * Exit status: the command's, or 128+N when it was killed by signal N; 127 when it
 * cannot be executed; 125 for a usage or pty error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static pid_t child = -1;
static int sigpipe_fds[2] = {-1, -1};

static void on_forward(int sig) {
    if (child > 0) kill(child, sig);
}

static void on_child(int sig) {
    (void)sig;
    int saved = errno;
    if (write(sigpipe_fds[1], "c", 1) < 0) { /* pipe full: a wake-up is already pending */ }
    errno = saved;
}

static int write_all(int fd, const char *buf, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                struct pollfd p = {fd, POLLOUT, 0};
                poll(&p, 1, 100);
                continue;
            }
            return -1;
        }
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

static int parse_dim(const char *s, int *out) {
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < 1 || v > 65535) return -1;
    *out = (int)v;
    return 0;
}

/* apply_sizes handles complete "ROWS COLS" lines buffered from the control fd. */
static void apply_sizes(int master, char *buf, size_t *len) {
    char *start = buf;
    char *nl;
    while ((nl = memchr(start, '\n', *len - (size_t)(start - buf))) != NULL) {
        *nl = '\0';
        int rows = 0, cols = 0;
        if (sscanf(start, "%d %d", &rows, &cols) == 2 && rows > 0 && rows < 65536 && cols > 0 && cols < 65536) {
            struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
            ioctl(master, TIOCSWINSZ, &ws);
        }
        start = nl + 1;
    }
    size_t rest = *len - (size_t)(start - buf);
    memmove(buf, start, rest);
    *len = rest;
    if (*len >= 256) *len = 0; /* a line that long is garbage: drop it */
}

static int exit_code(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 125;
}

int main(int argc, char **argv) {
    int rows = 24, cols = 80, raw = 0, i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) { i++; break; }
        if (strcmp(argv[i], "--raw") == 0) { raw = 1; continue; }
        if (i + 1 < argc && strcmp(argv[i], "--rows") == 0 && parse_dim(argv[i + 1], &rows) == 0) { i++; continue; }
        if (i + 1 < argc && strcmp(argv[i], "--cols") == 0 && parse_dim(argv[i + 1], &cols) == 0) { i++; continue; }
        fprintf(stderr, "hako-pty: bad argument %s\n", argv[i]);
        return 125;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: hako-pty [--rows N] [--cols N] [--raw] -- COMMAND [ARG...]\n");
        return 125;
    }

    /* Decide about the control fd before opening anything that could take number 3. */
    int ctl = fcntl(3, F_GETFD) >= 0 ? 3 : -1;
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) {
        perror("hako-pty: posix_openpt");
        return 125;
    }
    char *slave_name = ptsname(master);
    if (slave_name == NULL) {
        perror("hako-pty: ptsname");
        return 125;
    }
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    ioctl(master, TIOCSWINSZ, &ws);

    if (raw) {
        /* Before the fork, so that input relayed early is never echoed in cooked mode. */
        int s = open(slave_name, O_RDWR | O_NOCTTY | O_CLOEXEC);
        struct termios t;
        if (s < 0 || tcgetattr(s, &t) < 0) {
            perror("hako-pty: raw mode");
            return 125;
        }
        cfmakeraw(&t);
        tcsetattr(s, TCSANOW, &t);
        close(s);
    }

    if (pipe2(sigpipe_fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        perror("hako-pty: pipe");
        return 125;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_child;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);

    child = fork();
    if (child < 0) {
        perror("hako-pty: fork");
        return 125;
    }
    if (child == 0) {
        setsid();
        int slave = open(slave_name, O_RDWR); /* session leader without O_NOCTTY: becomes the ctty */
        if (slave < 0) _exit(125);
        ioctl(slave, TIOCSCTTY, 0);
        dup2(slave, 0);
        dup2(slave, 1);
        dup2(slave, 2);
        if (slave > 2) close(slave);
        if (ctl >= 0) close(ctl);
        signal(SIGCHLD, SIG_DFL);
        execvp(argv[i], argv + i);
        fprintf(stderr, "hako-pty: %s: %s\n", argv[i], strerror(errno));
        _exit(127);
    }

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_forward;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /*
     * Input waits in inbuf until the pty takes it: the master is non-blocking, so a
     * command that does not read its input can never stall the relay of its output.
     */
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    int in_open = 1, status = 0, exited = 0;
    char buf[16384], inbuf[16384], ctlbuf[512];
    size_t ctl_len = 0, in_len = 0, in_off = 0;
    for (;;) {
        struct pollfd fds[4] = {
            {master, (short)(POLLIN | (in_len > in_off ? POLLOUT : 0)), 0},
            {sigpipe_fds[0], POLLIN, 0},
            {in_open && in_len == in_off ? 0 : -1, POLLIN, 0},
            {ctl, POLLIN, 0},
        };
        /* Once the command exited, drain what the pty still holds, then stop. */
        int n = poll(fds, 4, exited ? 50 : -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (n == 0 && exited) break;
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(master, buf, sizeof buf);
            if (r > 0) {
                if (write_all(1, buf, (size_t)r) < 0) { /* nobody reads: keep draining */ }
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                /* EIO: every slave fd is closed. */
                if (exited) break;
                struct pollfd p = {sigpipe_fds[0], POLLIN, 0};
                poll(&p, 1, 100);
            }
        }
        if ((fds[0].revents & POLLOUT) && in_len > in_off) {
            ssize_t w = write(master, inbuf + in_off, in_len - in_off);
            if (w > 0) in_off += (size_t)w;
            else if (w < 0 && errno != EINTR && errno != EAGAIN) in_off = in_len; /* the pty is gone: drop it */
            if (in_off == in_len) in_off = in_len = 0;
        }
        if (fds[1].revents & POLLIN) {
            char drain[64];
            while (read(sigpipe_fds[0], drain, sizeof drain) > 0) {}
            if (!exited && waitpid(child, &status, WNOHANG) == child) exited = 1;
        }
        if (fds[2].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(0, inbuf, sizeof inbuf);
            if (r > 0) {
                in_len = (size_t)r;
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                /* Input ended: deliver the terminal's EOF character once, as a user typing ^D would. */
                struct termios t;
                inbuf[0] = 4;
                if (tcgetattr(master, &t) == 0) inbuf[0] = (char)t.c_cc[VEOF];
                in_len = 1;
                in_open = 0;
            }
        }
        if (fds[3].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(ctl, ctlbuf + ctl_len, sizeof ctlbuf - ctl_len);
            if (r > 0) {
                ctl_len += (size_t)r;
                apply_sizes(master, ctlbuf, &ctl_len);
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                ctl = -1;
            }
        }
    }
    if (!exited) waitpid(child, &status, 0);
    return exit_code(status);
}
