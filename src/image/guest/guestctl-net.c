/*
 * hako-guestctl's network changes over rtnetlink: links (up, down, name, MTU), addresses,
 * main-table routes and permanent neighbours. The wire lines are documented in hako-guestctl.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <string.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>

#include "guestctl.h"

/* FLUSH_BATCH entries are collected per dump round; a flush repeats at most FLUSH_ROUNDS rounds. */
#define FLUSH_BATCH 128
#define FLUSH_ROUNDS 8

static int parse_index(const char *s, int *out)
{
	unsigned long long v;
	if (parse_u64(s, INT_MAX, &v) != 0 || v == 0)
		return EINVAL;
	*out = (int)v;
	return 0;
}

/* parse_ip accepts an address in either family; "-" is none (family 0) when optional. */
static int parse_ip(const char *s, int optional, struct ip *ip)
{
	memset(ip, 0, sizeof *ip);
	if (optional && strcmp(s, "-") == 0)
		return 0;
	if (inet_pton(AF_INET, s, ip->bytes) == 1) {
		ip->family = AF_INET;
		ip->len = 4;
	} else if (inet_pton(AF_INET6, s, ip->bytes) == 1) {
		ip->family = AF_INET6;
		ip->len = 16;
	} else {
		return EINVAL;
	}
	return 0;
}

static int parse_plen(const char *s, const struct ip *ip, unsigned char *out)
{
	unsigned long long v;
	if (parse_u64(s, ip->len * 8, &v) != 0)
		return EINVAL;
	*out = (unsigned char)v;
	return 0;
}

/* host_bits_clear: the address is the network of its prefix (the kernel refuses others for IPv4). */
static int host_bits_clear(const struct ip *ip, unsigned plen)
{
	for (unsigned bit = plen; bit < ip->len * 8; bit++) {
		if (ip->bytes[bit / 8] & (0x80 >> (bit % 8)))
			return 0;
	}
	return 1;
}

static int hexdigit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* parse_mac reads exactly six colon-separated two-digit hex octets. */
static int parse_mac(const char *s, unsigned char mac[6])
{
	if (strlen(s) != 17)
		return EINVAL;
	for (int i = 0; i < 6; i++) {
		int hi = hexdigit(s[3 * i]), lo = hexdigit(s[3 * i + 1]);
		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			return EINVAL;
		mac[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* valid_ifname: 1-15 characters of [A-Za-z0-9_.-] (the kernel allows more; hako does not). */
static int valid_ifname(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= IFNAMSIZ || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

static int set_link(int index, unsigned int change, unsigned int flags, int attr, const void *data, size_t len)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = index, .ifi_change = change, .ifi_flags = flags };
	struct nl_req r;
	nl_begin(&r, RTM_SETLINK, 0, &ifi, sizeof ifi);
	if (attr != 0 && nl_attr(&r, attr, data, len) != 0)
		return ENOBUFS;
	return nl_talk(&r);
}

int net_linkup(char **w, int n)
{
	int index;
	if (n != 2 || parse_index(w[1], &index))
		return EINVAL;
	return set_link(index, IFF_UP, IFF_UP, 0, NULL, 0);
}

int net_linkdown(char **w, int n)
{
	int index;
	if (n != 2 || parse_index(w[1], &index))
		return EINVAL;
	return set_link(index, IFF_UP, 0, 0, NULL, 0);
}

int net_linkname(char **w, int n)
{
	int index;
	if (n != 3 || parse_index(w[1], &index) || !valid_ifname(w[2]))
		return EINVAL;
	return set_link(index, 0, 0, IFLA_IFNAME, w[2], strlen(w[2]) + 1);
}

int net_linkmtu(char **w, int n)
{
	int index;
	unsigned long long mtu;
	if (n != 3 || parse_index(w[1], &index) || parse_u64(w[2], 65535, &mtu) || mtu < 68)
		return EINVAL;
	unsigned int v = (unsigned int)mtu;
	return set_link(index, 0, 0, IFLA_MTU, &v, sizeof v);
}

/* flush_entry is what deleting one dumped route needs. */
struct flush_entry {
	struct ip dst, gw;
	unsigned char plen, tos, protocol, type;
	unsigned int table, priority;
};

struct flush_ctx {
	int index;
	int count, more;
	struct flush_entry e[FLUSH_BATCH];
};

static int keep(struct flush_ctx *c, const struct flush_entry *e)
{
	if (c->count == FLUSH_BATCH) {
		c->more = 1;
		return 0;
	}
	c->e[c->count++] = *e;
	return 0;
}

int net_addrdel(char **w, int n)
{
	int index;
	struct ip ip;
	unsigned char plen;
	if (n != 4 || parse_index(w[1], &index) || parse_ip(w[2], 0, &ip) || parse_plen(w[3], &ip, &plen))
		return EINVAL;
	struct ifaddrmsg ifa = { .ifa_family = (unsigned char)ip.family, .ifa_prefixlen = plen, .ifa_index = (unsigned)index };
	struct nl_req r;
	nl_begin(&r, RTM_DELADDR, 0, &ifa, sizeof ifa);
	if (nl_attr(&r, ip.family == AF_INET ? IFA_LOCAL : IFA_ADDRESS, ip.bytes, ip.len) != 0)
		return ENOBUFS;
	int err = nl_talk(&r);
	/* Gone already: deleting an IPv4 primary address takes its secondaries with it. */
	return err == EADDRNOTAVAIL ? 0 : err;
}

static int collect_route(const struct nlmsghdr *h, void *ctx)
{
	struct flush_ctx *c = ctx;
	const struct rtmsg *rt = NLMSG_DATA(h);
	const struct rtattr *tb[RTA_MAX + 1];
	if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof *rt))
		return 0;
	if ((rt->rtm_family != AF_INET && rt->rtm_family != AF_INET6) || (rt->rtm_flags & RTM_F_CLONED) != 0)
		return 0;
	nl_attrs(tb, RTA_MAX, RTM_RTA(rt), (int)RTM_PAYLOAD(h));
	/* Only the main table's routes through this device; the kernel's link routes stay. */
	if (nl_route_table(rt, tb) != RT_TABLE_MAIN || nl_attr_u32(tb[RTA_OIF], 0) != (unsigned int)c->index || rt->rtm_protocol == RTPROT_KERNEL)
		return 0;
	struct flush_entry e = {
		.plen = rt->rtm_dst_len, .tos = rt->rtm_tos, .protocol = rt->rtm_protocol, .type = rt->rtm_type,
		.table = RT_TABLE_MAIN, .priority = nl_attr_u32(tb[RTA_PRIORITY], 0),
	};
	if (!nl_attr_ip(tb[RTA_DST], rt->rtm_family, &e.dst)) {
		e.dst.family = rt->rtm_family;
		e.dst.len = rt->rtm_family == AF_INET ? 4 : 16;
	}
	nl_attr_ip(tb[RTA_GATEWAY], rt->rtm_family, &e.gw);
	return keep(c, &e);
}

static int delete_route(int index, const struct flush_entry *e)
{
	/* RT_SCOPE_NOWHERE matches a route of any scope. */
	struct rtmsg rt = {
		.rtm_family = (unsigned char)e->dst.family, .rtm_dst_len = e->plen, .rtm_tos = e->tos, .rtm_table = RT_TABLE_MAIN,
		.rtm_protocol = e->protocol, .rtm_scope = RT_SCOPE_NOWHERE, .rtm_type = e->type,
	};
	struct nl_req r;
	unsigned int oif = (unsigned int)index;
	nl_begin(&r, RTM_DELROUTE, 0, &rt, sizeof rt);
	if ((e->plen > 0 && nl_attr(&r, RTA_DST, e->dst.bytes, e->dst.len) != 0) || nl_attr(&r, RTA_OIF, &oif, sizeof oif) != 0 ||
	    nl_attr(&r, RTA_TABLE, &e->table, sizeof e->table) != 0 || nl_attr(&r, RTA_PRIORITY, &e->priority, sizeof e->priority) != 0 ||
	    (e->gw.family != 0 && nl_attr(&r, RTA_GATEWAY, e->gw.bytes, e->gw.len) != 0))
		return ENOBUFS;
	int err = nl_talk(&r);
	/* Gone already: an earlier delete or the link going down took it. */
	return err == ESRCH ? 0 : err;
}

/* net_routeflush dumps, collects and deletes in rounds until nothing is left (or FLUSH_ROUNDS pass). */
int net_routeflush(char **w, int n)
{
	static struct flush_ctx c;
	int index;
	if (n != 2 || parse_index(w[1], &index))
		return EINVAL;
	struct rtmsg rt = { .rtm_family = AF_UNSPEC };
	for (int round = 0; round < FLUSH_ROUNDS; round++) {
		c.index = index;
		c.count = 0;
		c.more = 0;
		int err = nl_dump(RTM_GETROUTE, &rt, sizeof rt, collect_route, &c);
		if (err != 0)
			return err;
		for (int i = 0; i < c.count; i++) {
			if ((err = delete_route(index, &c.e[i])) != 0)
				return err;
		}
		if (!c.more)
			return 0;
	}
	return E2BIG;
}

int net_addradd(char **w, int n)
{
	int index;
	struct ip ip;
	unsigned char plen;
	if (n != 4 || parse_index(w[1], &index) || parse_ip(w[2], 0, &ip) || parse_plen(w[3], &ip, &plen))
		return EINVAL;
	struct ifaddrmsg ifa = { .ifa_family = (unsigned char)ip.family, .ifa_prefixlen = plen, .ifa_index = (unsigned)index };
	/* The host's IPAM made the address unique: IPv6 skips duplicate detection (a second of tentative state). */
	if (ip.family == AF_INET6)
		ifa.ifa_flags = IFA_F_NODAD;
	struct nl_req r;
	nl_begin(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
	int err = nl_attr(&r, IFA_ADDRESS, ip.bytes, ip.len);
	if (ip.family == AF_INET) {
		/* IPv4 wants the local address too, and a broadcast address as `ip addr add ... brd +` gives. */
		unsigned char brd[4];
		memcpy(brd, ip.bytes, 4);
		for (unsigned bit = plen; bit < 32; bit++)
			brd[bit / 8] |= (unsigned char)(0x80 >> (bit % 8));
		err = err || nl_attr(&r, IFA_LOCAL, ip.bytes, 4) || (plen < 31 && nl_attr(&r, IFA_BROADCAST, brd, 4));
	}
	return err ? ENOBUFS : nl_talk(&r);
}

int net_routeadd(char **w, int n)
{
	struct ip dst, gw, src;
	unsigned char plen;
	unsigned long long scope;
	int index;
	if (n != 7 || parse_ip(w[1], 0, &dst) || parse_plen(w[2], &dst, &plen) || parse_ip(w[3], 1, &gw) || parse_ip(w[4], 1, &src) ||
	    parse_u64(w[5], 255, &scope) || parse_index(w[6], &index))
		return EINVAL;
	if ((gw.family != 0 && gw.family != dst.family) || (src.family != 0 && src.family != dst.family) || !host_bits_clear(&dst, plen))
		return EINVAL;
	struct rtmsg rt = {
		.rtm_family = (unsigned char)dst.family, .rtm_dst_len = plen, .rtm_table = RT_TABLE_MAIN,
		.rtm_protocol = RTPROT_STATIC, .rtm_scope = (unsigned char)scope, .rtm_type = RTN_UNICAST,
	};
	unsigned int oif = (unsigned int)index;
	struct nl_req r;
	nl_begin(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &rt, sizeof rt);
	if ((plen > 0 && nl_attr(&r, RTA_DST, dst.bytes, dst.len)) || (gw.family != 0 && nl_attr(&r, RTA_GATEWAY, gw.bytes, gw.len)) ||
	    (src.family != 0 && nl_attr(&r, RTA_PREFSRC, src.bytes, src.len)) || nl_attr(&r, RTA_OIF, &oif, sizeof oif))
		return ENOBUFS;
	return nl_talk(&r);
}

int net_neighset(char **w, int n)
{
	int index;
	struct ip ip;
	unsigned char mac[6];
	if (n != 4 || parse_index(w[1], &index) || parse_ip(w[2], 0, &ip) || parse_mac(w[3], mac))
		return EINVAL;
	struct ndmsg nd = { .ndm_family = (unsigned char)ip.family, .ndm_ifindex = index, .ndm_state = NUD_PERMANENT };
	struct nl_req r;
	nl_begin(&r, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, &nd, sizeof nd);
	if (nl_attr(&r, NDA_DST, ip.bytes, ip.len) || nl_attr(&r, NDA_LLADDR, mac, sizeof mac))
		return ENOBUFS;
	return nl_talk(&r);
}
