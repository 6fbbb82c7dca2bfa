/*
 * hako-guestctl: the guest agent's helper for the system calls Node cannot make: set the
 * clock, credit host entropy and reseed the kernel RNG, mount and unmount the 9p share.
 *
 * It runs once, as a co-process of the agent (so a VM restored from a template has it already
 * running and pays no fork+exec per call), and serves one request per line on stdin:
 *
 *   time SEC NSEC            clock_settime(CLOCK_REALTIME)
 *   reseed HEX               RNDADDENTROPY (credited) then RNDRESEEDCRNG on /dev/urandom
 *   mount9p TAG TARGET MSIZE mount TAG on TARGET as 9p over virtio
 *   umount TARGET            umount2(TARGET, 0)
 *   ping
 *
 * Each request gets one line on stdout: "ok", or "err ERRNO TEXT". Lines longer than
 * MAX_LINE are refused. It exits when stdin closes.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINE 1024
#define MAX_WORDS 6
#define MAX_SEED 256

static void reply(int err, const char *what)
{
	if (err == 0)
		fputs("ok\n", stdout);
	else
		printf("err %d %s: %s\n", err, what, strerror(err));
	fflush(stdout);
}

static int parse_u64(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int do_time(char **w, int n)
{
	unsigned long long sec, nsec;
	if (n != 3 || parse_u64(w[1], 1ULL << 40, &sec) || parse_u64(w[2], 999999999ULL, &nsec))
		return EINVAL;
	struct timespec ts = { .tv_sec = (time_t)sec, .tv_nsec = (long)nsec };
	return clock_settime(CLOCK_REALTIME, &ts) == 0 ? 0 : errno;
}

static int do_reseed(char **w, int n)
{
	if (n != 2)
		return EINVAL;
	size_t len = strlen(w[1]);
	if (len == 0 || len % 2 != 0 || len / 2 > MAX_SEED)
		return EINVAL;
	struct {
		struct rand_pool_info info;
		unsigned char buf[MAX_SEED];
	} req;
	for (size_t i = 0; i < len / 2; i++) {
		int hi = hexval(w[1][2 * i]), lo = hexval(w[1][2 * i + 1]);
		if (hi < 0 || lo < 0)
			return EINVAL;
		req.buf[i] = (unsigned char)(hi << 4 | lo);
	}
	req.info.entropy_count = (int)(len / 2 * 8);
	req.info.buf_size = (int)(len / 2);
	int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	int err = 0;
	/* The host's entropy is trusted, so it is credited; the reseed makes it count at once. */
	if (ioctl(fd, RNDADDENTROPY, &req.info) != 0 || ioctl(fd, RNDRESEEDCRNG) != 0)
		err = errno;
	close(fd);
	memset(&req, 0, sizeof req);
	return err;
}

static int do_mount9p(char **w, int n)
{
	unsigned long long msize;
	char opts[128];
	if (n != 4 || w[2][0] != '/' || parse_u64(w[3], 1ULL << 24, &msize))
		return EINVAL;
	snprintf(opts, sizeof opts, "trans=virtio,version=9p2000.L,msize=%llu", msize);
	return mount(w[1], w[2], "9p", MS_NOSUID | MS_NODEV, opts) == 0 ? 0 : errno;
}

static int do_umount(char **w, int n)
{
	if (n != 2 || w[1][0] != '/')
		return EINVAL;
	return umount2(w[1], 0) == 0 ? 0 : errno;
}

int main(void)
{
	char line[MAX_LINE + 2];
	while (fgets(line, sizeof line, stdin) != NULL) {
		size_t len = strlen(line);
		if (len > 0 && line[len - 1] == '\n') {
			line[--len] = '\0';
		} else if (!feof(stdin)) {
			int c;
			while ((c = getchar()) != EOF && c != '\n')
				;
			reply(E2BIG, "request");
			continue;
		}
		char *w[MAX_WORDS];
		int n = 0;
		for (char *tok = strtok(line, " "); tok != NULL && n < MAX_WORDS; tok = strtok(NULL, " "))
			w[n++] = tok;
		if (n == 0) {
			reply(EINVAL, "request");
		} else if (strcmp(w[0], "time") == 0) {
			reply(do_time(w, n), "time");
		} else if (strcmp(w[0], "reseed") == 0) {
			reply(do_reseed(w, n), "reseed");
		} else if (strcmp(w[0], "mount9p") == 0) {
			reply(do_mount9p(w, n), "mount9p");
		} else if (strcmp(w[0], "umount") == 0) {
			reply(do_umount(w, n), "umount");
		} else if (strcmp(w[0], "ping") == 0) {
			reply(0, "ping");
		} else {
			reply(EINVAL, w[0]);
		}
	}
	return 0;
}
