/*
 * hako-guestctl's dumps over rtnetlink: one line per link, per address and per main-table route,
 * for the agent's ListInterfaces and ListRoutes. The line formats are documented in hako-guestctl.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>

#include "guestctl.h"

/* DUMP_MAX_LINES bounds one dump's answer; the agent bounds what it reads too. */
#define DUMP_MAX_LINES 4096

static int lines;

/* room counts a line about to be printed; E2BIG once a dump has printed DUMP_MAX_LINES. */
static int room(void)
{
	if (lines >= DUMP_MAX_LINES)
		return E2BIG;
	lines++;
	return 0;
}

static const char *ip_text(const struct ip *ip, char *buf, size_t size)
{
	if (ip->family == 0)
		return "-";
	return inet_ntop(ip->family, ip->bytes, buf, (socklen_t)size) != NULL ? buf : "-";
}

static int print_link(const struct nlmsghdr *h, void *ctx)
{
	(void)ctx;
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	const struct rtattr *tb[IFLA_MTU + 1];
	if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof *ifi))
		return 0;
	nl_attrs(tb, IFLA_MTU, IFLA_RTA(ifi), (int)IFLA_PAYLOAD(h));
	/* Names hold no whitespace (the kernel refuses it); anything unprintable becomes '?'. */
	char name[IFNAMSIZ] = "?";
	if (tb[IFLA_IFNAME] != NULL) {
		const char *s = RTA_DATA(tb[IFLA_IFNAME]);
		size_t i = 0;
		for (; i < RTA_PAYLOAD(tb[IFLA_IFNAME]) && i < IFNAMSIZ - 1 && s[i] != '\0'; i++)
			name[i] = (s[i] > 0x20 && s[i] < 0x7f) ? s[i] : '?';
		name[i > 0 ? i : 1] = '\0';
	}
	/* The hardware address as colon-separated hex octets (at most 32 of them); "-" when there is none. */
	static const char hex[] = "0123456789abcdef";
	char mac[3 * 32] = "-";
	if (tb[IFLA_ADDRESS] != NULL && RTA_PAYLOAD(tb[IFLA_ADDRESS]) > 0 && RTA_PAYLOAD(tb[IFLA_ADDRESS]) <= 32) {
		const unsigned char *b = RTA_DATA(tb[IFLA_ADDRESS]);
		size_t at = 0;
		for (size_t i = 0; i < RTA_PAYLOAD(tb[IFLA_ADDRESS]); i++) {
			if (i > 0)
				mac[at++] = ':';
			mac[at++] = hex[b[i] >> 4];
			mac[at++] = hex[b[i] & 15];
		}
		mac[at] = '\0';
	}
	if (room() != 0)
		return E2BIG;
	printf("link %d %s %s %u %u\n", ifi->ifi_index, name, mac, nl_attr_u32(tb[IFLA_MTU], 0), ifi->ifi_flags);
	return 0;
}

static int print_addr(const struct nlmsghdr *h, void *ctx)
{
	(void)ctx;
	const struct ifaddrmsg *ifa = NLMSG_DATA(h);
	const struct rtattr *tb[IFA_PROTO + 1];
	struct ip ip;
	char buf[INET6_ADDRSTRLEN];
	if (h->nlmsg_type != RTM_NEWADDR || h->nlmsg_len < NLMSG_LENGTH(sizeof *ifa) || (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6))
		return 0;
	nl_attrs(tb, IFA_PROTO, IFA_RTA(ifa), (int)IFA_PAYLOAD(h));
	/* IFA_LOCAL is the address itself where there is a peer (IFA_ADDRESS is then the peer's). */
	if (!nl_attr_ip(tb[IFA_LOCAL] != NULL ? tb[IFA_LOCAL] : tb[IFA_ADDRESS], ifa->ifa_family, &ip))
		return 0;
	unsigned int proto = nl_attr_u8(tb[IFA_PROTO], 0);
	if (room() != 0)
		return E2BIG;
	printf("addr %u %s %u %u\n", ifa->ifa_index, ip_text(&ip, buf, sizeof buf), ifa->ifa_prefixlen, proto);
	return 0;
}

static int print_route(const struct nlmsghdr *h, void *ctx)
{
	(void)ctx;
	const struct rtmsg *rt = NLMSG_DATA(h);
	const struct rtattr *tb[RTA_MAX + 1];
	struct ip dst, gw, src;
	char b1[INET6_ADDRSTRLEN], b2[INET6_ADDRSTRLEN], b3[INET6_ADDRSTRLEN];
	if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof *rt))
		return 0;
	if ((rt->rtm_family != AF_INET && rt->rtm_family != AF_INET6) || (rt->rtm_flags & RTM_F_CLONED) != 0)
		return 0;
	nl_attrs(tb, RTA_MAX, RTM_RTA(rt), (int)RTM_PAYLOAD(h));
	if (nl_route_table(rt, tb) != RT_TABLE_MAIN)
		return 0;
	if (!nl_attr_ip(tb[RTA_DST], rt->rtm_family, &dst)) {
		dst.family = rt->rtm_family; /* no RTA_DST: the default route, all zeros */
		dst.len = rt->rtm_family == AF_INET ? 4 : 16;
	}
	nl_attr_ip(tb[RTA_GATEWAY], rt->rtm_family, &gw);
	nl_attr_ip(tb[RTA_PREFSRC], rt->rtm_family, &src);
	if (room() != 0)
		return E2BIG;
	printf("route %s %u %s %s %u %u %u %u\n", ip_text(&dst, b1, sizeof b1), rt->rtm_dst_len, ip_text(&gw, b2, sizeof b2),
	       ip_text(&src, b3, sizeof b3), rt->rtm_scope, nl_attr_u32(tb[RTA_OIF], 0), rt->rtm_protocol, rt->rtm_type);
	return 0;
}

int net_links(char **w, int n)
{
	(void)w;
	if (n != 1)
		return EINVAL;
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	lines = 0;
	return nl_dump(RTM_GETLINK, &ifi, sizeof ifi, print_link, NULL);
}

int net_addrs(char **w, int n)
{
	(void)w;
	if (n != 1)
		return EINVAL;
	struct ifaddrmsg ifa = { .ifa_family = AF_UNSPEC };
	lines = 0;
	return nl_dump(RTM_GETADDR, &ifa, sizeof ifa, print_addr, NULL);
}

int net_routes(char **w, int n)
{
	(void)w;
	if (n != 1)
		return EINVAL;
	struct rtmsg rt = { .rtm_family = AF_UNSPEC };
	lines = 0;
	return nl_dump(RTM_GETROUTE, &rt, sizeof rt, print_route, NULL);
}
