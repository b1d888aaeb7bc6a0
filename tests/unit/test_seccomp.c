// SPDX-License-Identifier: MIT
/*
 * Seccomp chains of an image laid out for the restorer (dest-agent/seccomp.c),
 * and the source's refusal of filters shared by only some threads
 * (source-agent/seccomp.c).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <string.h>

#include "dest-agent/restore.h"
#include "source-agent/seccomp.h"

#define ADDR	0x10000000ULL
#define NTH	3

static uint8_t progs[3][16];		/* two instructions each */
static SeccompFilter filt[3], *filtp[3];
static ThreadCore tc[NTH], *tcp[NTH];
static uint32_t chains[NTH][4];
static ProcCore pc;

/* Three threads: the first two share filters 0, 1 and the first adds 2; the third has 0 only. */
static void setup(void)
{
	static const uint32_t c[NTH][4] = { { 0, 1, 2 }, { 0, 1 }, { 0 } };
	static const size_t n[NTH] = { 3, 2, 1 };
	size_t i;

	proc_core__init(&pc);
	for (i = 0; i < 3; i++) {
		seccomp_filter__init(&filt[i]);
		memset(progs[i], 0x11 * (i + 1), sizeof(progs[i]));
		filt[i].prog.data = progs[i];
		filt[i].prog.len = sizeof(progs[i]);
		filt[i].has_flags = 1;
		filt[i].flags = i == 2 ? SECCOMP_FILTER_FLAG_LOG : 0;
		filtp[i] = &filt[i];
	}
	for (i = 0; i < NTH; i++) {
		thread_core__init(&tc[i]);
		tc[i].tid = 100 + i;
		tc[i].has_seccomp_mode = 1;
		tc[i].seccomp_mode = SECCOMP_MODE_FILTER;
		memcpy(chains[i], c[i], sizeof(chains[i]));
		tc[i].seccomp_chain = chains[i];
		tc[i].n_seccomp_chain = n[i];
		tcp[i] = &tc[i];
	}
	pc.threads = tcp;
	pc.n_threads = NTH;
	pc.seccomp_filters = filtp;
	pc.n_seccomp_filters = 3;
}

static int layout(struct rst_args *a, struct rst_thread *t, uint8_t **buf)
{
	memset(a, 0, sizeof(*a));
	memset(t, 0, NTH * sizeof(*t));
	*buf = calloc(1, seccomp_payload_size(&pc));
	cr_assert(*buf);
	return seccomp_layout(&pc, a, t, *buf, ADDR);
}

/* The struct rst_seccomp at payload address @addr. */
static const struct rst_seccomp *at(uint8_t *buf, uint64_t addr)
{
	return (const struct rst_seccomp *)(buf + (addr - ADDR));
}

Test(seccomp, shared_bottom_once_then_each_thread_its_own, .init = setup)
{
	struct rst_args a;
	struct rst_thread t[NTH];
	const struct rst_seccomp *s;
	uint8_t *buf;

	cr_assert_eq(layout(&a, t, &buf), 0);
	/* only filter 0 is in every chain: the leader installs it before cloning */
	cr_assert_eq(a.nr_seccomp_shared, 1);
	s = at(buf, a.seccomp_shared);
	cr_assert_eq(s[0].len, 2);
	cr_assert_eq(memcmp(buf + (s[0].prog - ADDR), progs[0], 16), 0);
	cr_assert_eq(t[0].nr_seccomp, 2);
	s = at(buf, t[0].seccomp);
	cr_assert_eq(memcmp(buf + (s[0].prog - ADDR), progs[1], 16), 0);
	cr_assert_eq(memcmp(buf + (s[1].prog - ADDR), progs[2], 16), 0);
	cr_assert_eq(s[0].flags, 0);
	cr_assert_eq(s[1].flags, SECCOMP_FILTER_FLAG_LOG);
	cr_assert_eq(t[1].nr_seccomp, 1);
	cr_assert_eq(at(buf, t[1].seccomp)[0].prog, s[0].prog);	/* one copy of each program */
	cr_assert_eq(t[2].nr_seccomp, 0);
	cr_assert_eq(t[0].seccomp_strict + t[1].seccomp_strict + t[2].seccomp_strict, 0);
	free(buf);
}

Test(seccomp, a_thread_without_filters_shares_nothing, .init = setup)
{
	struct rst_args a;
	struct rst_thread t[NTH];
	uint8_t *buf;

	tc[2].seccomp_mode = SECCOMP_MODE_STRICT;
	tc[2].n_seccomp_chain = 0;
	cr_assert_eq(layout(&a, t, &buf), 0);
	cr_assert_eq(a.nr_seccomp_shared, 0);
	cr_assert_eq(t[0].nr_seccomp, 3);
	cr_assert_eq(t[1].nr_seccomp, 2);
	cr_assert_eq(t[2].nr_seccomp, 0);
	cr_assert_eq(t[2].seccomp_strict, 1);
	free(buf);
}

Test(seccomp, no_seccomp_lays_out_nothing, .init = setup)
{
	struct rst_args a;
	struct rst_thread t[NTH];
	uint8_t *buf;
	size_t i;

	for (i = 0; i < NTH; i++) {
		tc[i].has_seccomp_mode = 0;
		tc[i].n_seccomp_chain = 0;
	}
	cr_assert(!seccomp_in_use(&pc));
	cr_assert_eq(layout(&a, t, &buf), 0);
	cr_assert_eq(a.nr_seccomp_shared, 0);
	cr_assert_eq(t[0].nr_seccomp + t[1].nr_seccomp + t[2].nr_seccomp, 0);
	free(buf);
}

/* Every hostile field is refused before the blob sees it. */
Test(seccomp, hostile_images_refused, .init = setup)
{
	struct rst_args a;
	struct rst_thread t[NTH];
	uint8_t *buf;
	int i;

	for (i = 0; i < 8; i++) {
		setup();
		switch (i) {
		case 0: filt[1].prog.len = 12; break;			/* not whole instructions */
		case 1: filt[1].prog.len = 0; break;
		case 2: filt[1].prog.len = 4097 * 8; break;		/* over BPF_MAXINSNS */
		case 3: filt[1].flags = SECCOMP_FILTER_FLAG_TSYNC; break;	/* only LOG */
		case 4: chains[1][1] = 3; break;			/* no such filter */
		case 5: tc[2].seccomp_mode = 3; break;			/* unknown mode */
		case 6: tc[2].n_seccomp_chain = 0; break;		/* filter mode, no chain */
		case 7: tc[2].seccomp_mode = SECCOMP_MODE_STRICT; break;	/* strict with a chain */
		}
		cr_assert_eq(layout(&a, t, &buf), -EINVAL, "case %d", i);
		free(buf);
	}
}

/* Only the bottom all threads have may be shared; a filter two threads share beyond it is refused. */
Test(seccomp, sharing_by_some_threads_refused, .init = setup)
{
	/* setup: {0,1,2} {0,1} {0}: threads 0 and 1 share filter 1, thread 2 lacks it */
	cr_assert_eq(seccomp_check_sharing(1, tcp, NTH), -EOPNOTSUPP);
	chains[1][1] = 2;		/* {0,1,2} {0,2} {0}: different filters above the bottom */
	cr_assert_eq(seccomp_check_sharing(1, tcp, NTH), 0);
	tc[2].n_seccomp_chain = 2;	/* {0,1,2} {0,2} {0,2}: 2 and 3 share filter 2 */
	chains[2][1] = 2;
	cr_assert_eq(seccomp_check_sharing(1, tcp, NTH), -EOPNOTSUPP);
	chains[0][1] = 2;		/* {0,2,2} {0,2} {0,2}: all share 0 and 2 */
	cr_assert_eq(seccomp_check_sharing(1, tcp, NTH), 0);
	tc[0].n_seccomp_chain = 0;	/* {} {0,2} {0,2}: a leader without filters, two sharing */
	cr_assert_eq(seccomp_check_sharing(1, tcp, NTH), -EOPNOTSUPP);
	cr_assert_eq(seccomp_check_sharing(1, tcp, 1), 0);
}
