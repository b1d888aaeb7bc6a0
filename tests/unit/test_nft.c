// SPDX-License-Identifier: MIT
/* The nft lock scripts: one script for many locks, each lock written once. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>

#include "common/nft.h"

static struct sockaddr_in v4(const char *ip, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static size_t count(const char *s, const char *what)
{
	size_t n = 0;

	for (; (s = strstr(s, what)); s++)
		n++;
	return n;
}

Test(nft, batch_and_dedupe)
{
	struct sockaddr_in l = v4("10.0.0.1", 80), p1 = v4("10.0.0.2", 4000),
			   p2 = v4("10.0.0.22", 4000), any = v4("0.0.0.0", 80);
	struct nft_script s = { 0 }, made = { 0 };

	cr_assert_eq(nft_script_table(&s, "ferry_lock_x"), 0);
	cr_assert_eq(nft_script_conn(&s, NULL, "ferry_lock_x", (void *)&l, (void *)&p1), 0);
	/* the same connection again (a shared socket): written once */
	cr_assert_eq(nft_script_conn(&s, NULL, "ferry_lock_x", (void *)&l, (void *)&p1), 0);
	/* a peer whose address has the first's as a prefix: its own rules */
	cr_assert_eq(nft_script_conn(&s, NULL, "ferry_lock_x", (void *)&l, (void *)&p2), 0);
	cr_assert_eq(nft_script_listener(&s, NULL, "ferry_lock_x", (void *)&any), 0);
	cr_assert_eq(count(s.buf, "table inet ferry_lock_x {"), 1);
	/* the restore's own FIN and ACK segments pass, before any drop rule */
	cr_assert_eq(count(s.buf, "insert rule inet ferry_lock_x in meta mark 0x46525259 accept\n"),
		     1, "%s", s.buf);
	cr_assert_eq(count(s.buf, "add rule"), 5, "%s", s.buf);
	cr_assert(strstr(s.buf, "add rule inet ferry_lock_x in ip saddr 10.0.0.22 ip daddr "
				"10.0.0.1 tcp sport 4000 tcp dport 80 drop\n"));
	cr_assert(strstr(s.buf, "add rule inet ferry_lock_x in tcp dport 80 tcp flags & "
				"(syn | ack) == syn drop\n"));
	cr_assert_eq(strlen(s.buf), s.len);

	/* once applied (moved to made), nothing of it is written again */
	cr_assert_eq(nft_script_move(&made, &s), 0);
	cr_assert_eq(s.len, 0);
	cr_assert_eq(nft_script_conn(&s, &made, "ferry_lock_x", (void *)&p1, (void *)&l), 0);
	cr_assert_eq(count(s.buf, "add rule"), 2, "reversed ends are another connection");
	cr_assert_eq(nft_script_conn(&s, &made, "ferry_lock_x", (void *)&l, (void *)&p2), 0);
	cr_assert_eq(count(s.buf, "add rule"), 2);
	nft_script_free(&s);
	nft_script_free(&made);
	cr_assert_null(s.buf);
}

Test(nft, unlock)
{
	struct nft_script s = { 0 };

	cr_assert_eq(nft_script_unlock(&s, "a"), 0);
	cr_assert_eq(nft_script_unlock(&s, "b"), 0);
	cr_assert_str_eq(s.buf, "add table inet a\ndelete table inet a\n"
				"add table inet b\ndelete table inet b\n");
	nft_script_free(&s);
}

Test(nft, emptied_script_holds_nothing)
{
	struct sockaddr_in l = v4("10.0.0.1", 80), p = v4("10.0.0.2", 4000);
	struct nft_script s = { 0 }, made = { 0 }, other = { 0 };

	cr_assert_eq(nft_script_conn(&s, NULL, "t", (void *)&l, (void *)&p), 0);
	cr_assert_eq(nft_script_move(&made, &s), 0);
	/* what was moved out is not "there already" for the emptied script */
	cr_assert_eq(nft_script_conn(&s, &other, "t", (void *)&l, (void *)&p), 0);
	cr_assert_eq(count(s.buf, "add rule"), 2);
	nft_script_free(&s);
	nft_script_free(&made);
}
