/*
 * hako-guestctl's netlink plumbing: one NETLINK_ROUTE socket kept open, requests that wait for
 * their acknowledgement, dumps read to their end, and the kernel's error text (extended ack).
 */
#include <errno.h>
#include <sys/types.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "guestctl.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/*
 * NL_RX is the receive buffer. The kernel fills a dump message of at most 32 KiB (or the page
 * size) per read, and a read into a smaller buffer would truncate it.
 */
#define NL_RX 32768
/* NL_TIMEOUT_SEC bounds each read; the agent's own timeout (10 s) is longer, so it sees our error. */
#define NL_TIMEOUT_SEC 5
#define NL_DETAIL_MAX 160

static int nl_fd = -1;
static unsigned int nl_seq;
static char detail[NL_DETAIL_MAX];
static union {
	struct nlmsghdr h;
	unsigned char buf[NL_RX];
} rx;

const char *nl_detail(void)
{
	return detail;
}

void nl_clear_detail(void)
{
	detail[0] = '\0';
}

/* nl_reset drops the socket after a failed read: a reply still on its way must not be read later. */
static void nl_reset(void)
{
	if (nl_fd >= 0)
		close(nl_fd);
	nl_fd = -1;
}

static int nl_open(void)
{
	if (nl_fd >= 0)
		return 0;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return errno;
	struct timeval tv = { .tv_sec = NL_TIMEOUT_SEC };
	int one = 1;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	/* Errors carry the kernel's text (EXT_ACK) and not a copy of the request (CAP_ACK), where
	 * the kernel offers them; both only make errors better, so neither is required. */
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		int err = errno;
		close(fd);
		return err;
	}
	nl_fd = fd;
	return 0;
}

void nl_begin(struct nl_req *r, int type, int flags, const void *hdr, size_t hdrlen)
{
	memset(r, 0, sizeof *r);
	r->h.nlmsg_len = NLMSG_LENGTH(hdrlen);
	r->h.nlmsg_type = (unsigned short)type;
	r->h.nlmsg_flags = (unsigned short)(NLM_F_REQUEST | flags);
	memcpy(NLMSG_DATA(&r->h), hdr, hdrlen);
}

int nl_attr(struct nl_req *r, int type, const void *data, size_t len)
{
	size_t at = NLMSG_ALIGN(r->h.nlmsg_len);
	if (at + RTA_SPACE(len) > sizeof r->buf)
		return ENOBUFS;
	struct rtattr *a = (struct rtattr *)(r->buf + at);
	a->rta_type = (unsigned short)type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	r->h.nlmsg_len = (unsigned int)(at + RTA_SPACE(len));
	return 0;
}

static int nl_send(struct nlmsghdr *h)
{
	int err = nl_open();
	if (err != 0)
		return err;
	h->nlmsg_seq = ++nl_seq;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	for (;;) {
		ssize_t sent = sendto(nl_fd, h, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel);
		if (sent == (ssize_t)h->nlmsg_len)
			return 0;
		if (sent < 0 && errno == EINTR)
			continue;
		err = sent < 0 ? errno : EIO;
		nl_reset();
		return err;
	}
}

/* nl_read reads one datagram from the kernel into rx; its length, or -errno. */
static long nl_read(void)
{
	for (;;) {
		struct sockaddr_nl from;
		struct iovec iov = { .iov_base = rx.buf, .iov_len = sizeof rx.buf };
		struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t got = recvmsg(nl_fd, &m, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 || (m.msg_flags & MSG_TRUNC) != 0) {
			int err = got < 0 ? errno : EMSGSIZE;
			nl_reset();
			return -err;
		}
		if (from.nl_pid != 0)
			continue; /* only the kernel answers requests */
		return (long)got;
	}
}

/* keep_detail copies the NLMSGERR_ATTR_MSG text of an error message, printable characters only. */
static void keep_detail(const struct nlmsghdr *h)
{
	if ((h->nlmsg_flags & NLM_F_ACK_TLVS) == 0)
		return;
	/* Without NETLINK_CAP_ACK the error echoes our request before the attributes. */
	const struct nlmsgerr *e = NLMSG_DATA(h);
	size_t off = NLMSG_LENGTH(sizeof *e);
	if ((h->nlmsg_flags & NLM_F_CAPPED) == 0 && e->msg.nlmsg_len > NLMSG_HDRLEN)
		off += NLMSG_ALIGN(e->msg.nlmsg_len - NLMSG_HDRLEN);
	if (h->nlmsg_len < off)
		return;
	const struct rtattr *a = (const struct rtattr *)((const unsigned char *)h + off);
	int len = (int)(h->nlmsg_len - off);
	for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type != NLMSGERR_ATTR_MSG)
			continue;
		const char *s = RTA_DATA(a);
		size_t n = RTA_PAYLOAD(a), i = 0;
		for (; i < n && i < sizeof detail - 1 && s[i] != '\0'; i++)
			detail[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
		detail[i] = '\0';
		return;
	}
}

/* nl_error is the positive errno of an NLMSG_ERROR message (0 for an acknowledgement). */
static int nl_error(const struct nlmsghdr *h)
{
	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
		return EPROTO;
	const struct nlmsgerr *e = NLMSG_DATA(h);
	if (e->error > 0 || e->error < -4095)
		return EPROTO;
	if (e->error != 0)
		keep_detail(h);
	return -e->error;
}

int nl_talk(struct nl_req *r)
{
	r->h.nlmsg_flags |= NLM_F_ACK;
	int err = nl_send(&r->h);
	if (err != 0)
		return err;
	unsigned int seq = r->h.nlmsg_seq;
	for (;;) {
		long got = nl_read();
		if (got < 0)
			return (int)-got;
		int len = (int)got;
		for (struct nlmsghdr *h = &rx.h; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_seq == seq && h->nlmsg_type == NLMSG_ERROR)
				return nl_error(h);
		}
	}
}

int nl_dump(int type, const void *hdr, size_t hdrlen, nl_dump_fn fn, void *ctx)
{
	struct nl_req r;
	nl_begin(&r, type, NLM_F_DUMP, hdr, hdrlen);
	int err = nl_send(&r.h);
	if (err != 0)
		return err;
	unsigned int seq = r.h.nlmsg_seq;
	int first = 0, intr = 0;
	for (;;) {
		long got = nl_read();
		if (got < 0)
			return (int)-got;
		int len = (int)got;
		for (struct nlmsghdr *h = &rx.h; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_seq != seq)
				continue; /* late answers to an earlier request */
			if ((h->nlmsg_flags & NLM_F_DUMP_INTR) != 0)
				intr = 1;
			if (h->nlmsg_type == NLMSG_ERROR)
				return nl_error(h);
			if (h->nlmsg_type == NLMSG_DONE) {
				if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int)) && *(const int *)NLMSG_DATA(h) < 0)
					return -*(const int *)NLMSG_DATA(h);
				return first != 0 ? first : intr ? EINTR : 0;
			}
			if (first == 0)
				first = fn(h, ctx);
		}
	}
}

void nl_attrs(const struct rtattr *tb[], int max, const struct rtattr *a, int len)
{
	memset(tb, 0, sizeof(tb[0]) * (size_t)(max + 1));
	for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type <= max)
			tb[a->rta_type] = a;
	}
}

int nl_attr_ip(const struct rtattr *a, int family, struct ip *ip)
{
	size_t want = family == AF_INET ? 4 : 16;
	memset(ip, 0, sizeof *ip);
	if (a == NULL || (family != AF_INET && family != AF_INET6) || RTA_PAYLOAD(a) != want)
		return 0;
	ip->family = family;
	ip->len = want;
	memcpy(ip->bytes, RTA_DATA(a), want);
	return 1;
}

unsigned int nl_attr_u32(const struct rtattr *a, unsigned int fallback)
{
	unsigned int v;
	if (a == NULL || RTA_PAYLOAD(a) < sizeof v)
		return fallback;
	memcpy(&v, RTA_DATA(a), sizeof v);
	return v;
}

unsigned int nl_attr_u8(const struct rtattr *a, unsigned int fallback)
{
	return a != NULL && RTA_PAYLOAD(a) >= 1 ? *(const unsigned char *)RTA_DATA(a) : fallback;
}

unsigned int nl_route_table(const struct rtmsg *rt, const struct rtattr *tb[])
{
	return nl_attr_u32(tb[RTA_TABLE], rt->rtm_table);
}
