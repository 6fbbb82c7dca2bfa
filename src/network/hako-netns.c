/*
 * hako-netns: the host process that stands for a sandbox's network namespace.
 *
 *   hako-netns new          unshare a new network namespace (loopback brought up)
 *   hako-netns join PATH    enter the network namespace at PATH (/var/run/netns/..., /proc/PID/ns/net)
 *
 * It is the pid the shim reports to containerd as the task pid: its /proc/PID/ns/net is the
 * pod's network namespace (ctr run --cni runs CNI against it). It keeps a new namespace alive
 * while it lives, and it watches the namespace: every batch of rtnetlink link, address or route
 * notifications prints one "change" line on stdout, so the shim can plug interfaces that CNI
 * adds after the VM started.
 *
 * Protocol on stdout: "ready INODE" once in the namespace (INODE identifies it), then
 * "change" lines. Errors go to stderr with a non-zero exit before "ready". It exits when stdin
 * reaches end of file (its owner closed it or died), and it gets SIGKILL if its parent dies.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(const char *what)
{
	fprintf(stderr, "hako-netns: %s: %s\n", what, strerror(errno));
	return 1;
}

static int loopback_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
	if (rc == 0) {
		ifr.ifr_flags |= IFF_UP;
		rc = ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
	return rc;
}

static int watch_socket(void)
{
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
	if (s < 0)
		return -1;
	struct sockaddr_nl sa;
	memset(&sa, 0, sizeof sa);
	sa.nl_family = AF_NETLINK;
	sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
	if (bind(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(s);
		return -1;
	}
	return s;
}

int main(int argc, char **argv)
{
	pid_t parent = getppid();
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		return fail("prctl");
	if (getppid() != parent)
		return 1; /* the parent died before the death signal was armed */

	if (argc == 2 && strcmp(argv[1], "new") == 0) {
		if (unshare(CLONE_NEWNET) != 0)
			return fail("unshare");
		if (loopback_up() != 0)
			return fail("bringing up lo");
	} else if (argc == 3 && strcmp(argv[1], "join") == 0) {
		int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return fail(argv[2]);
		if (setns(fd, CLONE_NEWNET) != 0)
			return fail("setns (is it a network namespace?)");
		close(fd);
	} else {
		fprintf(stderr, "usage: hako-netns new | hako-netns join PATH\n");
		return 2;
	}

	struct stat st;
	if (stat("/proc/self/ns/net", &st) != 0)
		return fail("/proc/self/ns/net");
	int nl = watch_socket();
	if (nl < 0)
		return fail("netlink");
	printf("ready %llu\n", (unsigned long long)st.st_ino);
	fflush(stdout);

	char buf[16384];
	struct pollfd fds[2] = { { .fd = 0, .events = POLLIN }, { .fd = nl, .events = POLLIN } };
	for (;;) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return fail("poll");
		}
		if (fds[0].revents != 0) {
			ssize_t n = read(0, buf, sizeof buf);
			if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
				return 0;
		}
		if (fds[1].revents != 0) {
			int got = 0;
			/* Drain the socket; one line per batch. ENOBUFS (an overrun) is a change too. */
			for (;;) {
				ssize_t n = recv(nl, buf, sizeof buf, 0);
				if (n > 0 || (n < 0 && errno == ENOBUFS)) {
					got = 1;
					continue;
				}
				break;
			}
			if (got && (fputs("change\n", stdout) < 0 || fflush(stdout) != 0))
				return 0; /* the reader is gone */
		}
	}
}
