/*
 * hako-guestctl: the guest agent's helper for the system calls Node cannot make: set the
 * clock, credit host entropy and reseed the kernel RNG, mount and unmount the 9p share, and
 * configure the guest's network over rtnetlink (no `ip` process on the start path).
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
 * Network requests (guestctl-net.c). IDX is an interface index (1..2^31-1), ADDR an IPv4 or
 * IPv6 address as inet_pton reads it, PLEN its prefix length, "-" an absent optional address:
 *
 *   linkup IDX / linkdown IDX          set IFF_UP / clear it
 *   linkname IDX NAME                  rename (NAME: 1-15 of [A-Za-z0-9_.-]; the link must be down)
 *   linkmtu IDX MTU                    set the MTU (68..65535)
 *   addradd IDX ADDR PLEN              add an address (IPv4 with its broadcast; IPv6 without DAD)
 *   addrdel IDX ADDR PLEN              delete an address (one already gone is no error)
 *   routeflush IDX                     delete the main table's routes out of IDX but those of
 *                                      protocol kernel (the link routes of its addresses)
 *   routeadd DST PLEN GW SRC SCOPE IDX add or replace a main-table unicast route, protocol static;
 *                                      DST must have no host bits (0.0.0.0 0 / :: 0 is default),
 *                                      GW and SRC (preferred source) are "-" or of DST's family
 *   neighset IDX ADDR MAC              add or replace a permanent neighbour (MAC: aa:bb:cc:dd:ee:ff)
 *   links                              dump: "link IDX NAME HWADDR MTU FLAGS" per link (HWADDR:
 *                                      colon-separated hex, "-" if none; FLAGS: ifi_flags, decimal)
 *   addrs                              dump: "addr IDX ADDR PLEN PROTO" per IPv4/IPv6 address
 *                                      (PROTO: ifa_proto, 0 when the kernel gives none)
 *   routes                             dump: "route DST PLEN GW SRC SCOPE OIF PROTO TYPE" per
 *                                      main-table IPv4/IPv6 route, cached clones left out (GW, SRC
 *                                      "-" if none; OIF 0 for a multipath route; rtm_* in decimal)
 *
 * Each request gets zero or more data lines (only dumps have them, at most 4096) and then one
 * final line: "ok", or "err ERRNO TEXT" (TEXT: the request, strerror and, for netlink, the
 * kernel's own message when it gives one). Data lines never begin with "ok" or "err". Lines
 * longer than MAX_LINE, or of more than MAX_WORDS words, are refused. It exits when stdin closes.
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

#include "guestctl.h"

#define MAX_LINE 1024
#define MAX_WORDS 8
#define MAX_SEED 256

static void reply(int err, const char *what)
{
	const char *detail = nl_detail();
	if (err == 0)
		fputs("ok\n", stdout);
	else if (detail[0] != '\0')
		printf("err %d %s: %s: %s\n", err, what, strerror(err), detail);
	else
		printf("err %d %s: %s\n", err, what, strerror(err));
	fflush(stdout);
}

int parse_u64(const char *s, unsigned long long max, unsigned long long *out)
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

static int do_ping(char **w, int n)
{
	(void)w;
	return n == 1 ? 0 : EINVAL;
}

static const struct {
	const char *name;
	request_fn fn;
} requests[] = {
	{ "time", do_time },
	{ "reseed", do_reseed },
	{ "mount9p", do_mount9p },
	{ "umount", do_umount },
	{ "ping", do_ping },
	{ "linkup", net_linkup },
	{ "linkdown", net_linkdown },
	{ "linkname", net_linkname },
	{ "linkmtu", net_linkmtu },
	{ "addrdel", net_addrdel },
	{ "addradd", net_addradd },
	{ "routeflush", net_routeflush },
	{ "routeadd", net_routeadd },
	{ "neighset", net_neighset },
	{ "links", net_links },
	{ "addrs", net_addrs },
	{ "routes", net_routes },
};

static void serve(char *line)
{
	char *w[MAX_WORDS];
	int n = 0;
	nl_clear_detail();
	char *tok = strtok(line, " ");
	for (; tok != NULL && n < MAX_WORDS; tok = strtok(NULL, " "))
		w[n++] = tok;
	if (n == 0 || tok != NULL) {
		reply(EINVAL, "request");
		return;
	}
	for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
		if (strcmp(w[0], requests[i].name) == 0) {
			reply(requests[i].fn(w, n), w[0]);
			return;
		}
	}
	reply(EINVAL, "unknown request");
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
			nl_clear_detail();
			reply(E2BIG, "request");
			continue;
		}
		serve(line);
	}
	return 0;
}
