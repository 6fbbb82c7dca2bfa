/*
 * hako-guestctl's internal interface: the parts the request loop (hako-guestctl.c) shares with
 * the netlink plumbing (guestctl-netlink.c) and the network requests (guestctl-net.c).
 */
#ifndef HAKO_GUESTCTL_H
#define HAKO_GUESTCTL_H

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stddef.h>

/* Older headers lack the address protocol (Linux 6.0); the guest kernel (6.1) sets it. */
#ifndef IFA_PROTO
#define IFA_PROTO 11
#endif

/* parse_u64 reads a decimal number no larger than max; -1 when s is not one. */
int parse_u64(const char *s, unsigned long long max, unsigned long long *out);

/*
 * A request handler gets the words of its line (w[0] is the request's name) and returns 0 or a
 * positive errno. Dumps print their data lines to stdout before returning.
 */
typedef int (*request_fn)(char **w, int n);

int net_linkup(char **w, int n);
int net_linkdown(char **w, int n);
int net_linkname(char **w, int n);
int net_linkmtu(char **w, int n);
int net_addrdel(char **w, int n);
int net_addradd(char **w, int n);
int net_routeflush(char **w, int n);
int net_routeadd(char **w, int n);
int net_neighset(char **w, int n);
int net_links(char **w, int n);
int net_addrs(char **w, int n);
int net_routes(char **w, int n);

/* NL_REQ_MAX is the size of one request message: a header and a few small attributes. */
#define NL_REQ_MAX 512

/* nl_req is a netlink request being built in buf. */
struct nl_req {
	union {
		struct nlmsghdr h;
		unsigned char buf[NL_REQ_MAX];
	};
};

/* nl_begin starts a request of type with flags (NLM_F_REQUEST is added) and a fixed header. */
void nl_begin(struct nl_req *r, int type, int flags, const void *hdr, size_t hdrlen);
/* nl_attr appends an attribute; ENOBUFS when it does not fit. */
int nl_attr(struct nl_req *r, int type, const void *data, size_t len);
/* nl_talk sends r with NLM_F_ACK and returns the kernel's answer: 0 or a positive errno. */
int nl_talk(struct nl_req *r);

/* nl_dump_fn sees one message of a dump; a non-zero return is remembered and returned by nl_dump. */
typedef int (*nl_dump_fn)(const struct nlmsghdr *h, void *ctx);
/*
 * nl_dump asks for a dump of type (RTM_GETLINK, ...) with the fixed header hdr and calls fn for
 * each message. It always reads the dump to its end, so the socket is ready for the next request.
 * EINTR: the kernel flagged the dump as inconsistent (the tables changed during it); ask again.
 */
int nl_dump(int type, const void *hdr, size_t hdrlen, nl_dump_fn fn, void *ctx);

/* ip is an IPv4 or IPv6 address (family 0: none). */
struct ip {
	int family;
	unsigned char bytes[16];
	size_t len;
};

/* nl_attrs fills tb[0..max] from an attribute list (later duplicates win; unknown types are skipped). */
void nl_attrs(const struct rtattr *tb[], int max, const struct rtattr *a, int len);
/* nl_attr_ip copies an address attribute of family; 0 when it is absent or of the wrong size. */
int nl_attr_ip(const struct rtattr *a, int family, struct ip *ip);
/* nl_attr_u32 / nl_attr_u8 read an attribute's value, or fallback when it is absent or short. */
unsigned int nl_attr_u32(const struct rtattr *a, unsigned int fallback);
unsigned int nl_attr_u8(const struct rtattr *a, unsigned int fallback);
/* nl_route_table is a dumped route's table (RTA_TABLE, for ids past 255, else rtm_table). */
unsigned int nl_route_table(const struct rtmsg *rt, const struct rtattr *tb[]);

/* nl_detail is the kernel's text for the last error (netlink extended ack), or "". */
const char *nl_detail(void);
/* nl_clear_detail forgets it (before each request). */
void nl_clear_detail(void);

#endif
