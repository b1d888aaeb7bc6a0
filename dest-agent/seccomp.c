// SPDX-License-Identifier: MIT
/*
 * Seccomp (source-agent/seccomp.c dumps it): each thread's filter chain is
 * installed again by the restorer, oldest first, and strict mode set last.
 * The filters every thread of the process has at the bottom of its chain
 * (a filter installed with TSYNC, or before the threads were made) are
 * installed once, by the leader before it clones the other threads, so
 * they are shared as they were; the rest of a thread's chain is its own.
 * The blob's own syscalls after that pass under PTRACE_O_SUSPEND_SECCOMP.
 */
#include <errno.h>
#include <linux/seccomp.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "dest-agent/restore.h"

#define SECCOMP_MAX_FILTERS	512	/* as the source reads them */
#define INSN_SIZE		8	/* struct sock_filter */
#define MAX_INSNS		4096	/* BPF_MAXINSNS */

static uint32_t thread_mode(const ThreadCore *tc)
{
	return tc->has_seccomp_mode ? tc->seccomp_mode : SECCOMP_MODE_DISABLED;
}

bool seccomp_in_use(const ProcCore *core)
{
	size_t i;

	for (i = 0; i < core->n_threads; i++)
		if (thread_mode(core->threads[i]) != SECCOMP_MODE_DISABLED)
			return true;
	return false;
}

/* Every field the blob will use, checked: images come from the network. */
static int seccomp_validate(const ProcCore *core)
{
	size_t i, k;

	for (i = 0; i < core->n_seccomp_filters; i++) {
		const SeccompFilter *f = core->seccomp_filters[i];

		if (!f->prog.len || f->prog.len % INSN_SIZE || f->prog.len / INSN_SIZE > MAX_INSNS ||
		    (f->flags & ~SECCOMP_FILTER_FLAG_LOG))
			return -EINVAL;
	}
	for (i = 0; i < core->n_threads; i++) {
		const ThreadCore *tc = core->threads[i];
		uint32_t mode = thread_mode(tc);

		if (mode > SECCOMP_MODE_FILTER || tc->n_seccomp_chain > SECCOMP_MAX_FILTERS ||
		    (mode == SECCOMP_MODE_FILTER) != (tc->n_seccomp_chain > 0))
			return -EINVAL;
		for (k = 0; k < tc->n_seccomp_chain; k++)
			if (tc->seccomp_chain[k] >= core->n_seccomp_filters)
				return -EINVAL;
	}
	return 0;
}

/* The length of the bottom of the chain every thread has. */
static size_t shared_prefix(const ProcCore *core)
{
	const ThreadCore *lead = core->threads[0];
	size_t n = lead->n_seccomp_chain, i, k;

	for (i = 1; i < core->n_threads; i++) {
		const ThreadCore *tc = core->threads[i];

		for (k = 0; k < n && k < tc->n_seccomp_chain; k++)
			if (tc->seccomp_chain[k] != lead->seccomp_chain[k])
				break;
		n = k;
	}
	return n;
}

size_t seccomp_payload_size(const ProcCore *core)
{
	size_t len = 0, i;

	for (i = 0; i < core->n_seccomp_filters; i++)
		len += core->seccomp_filters[i]->prog.len;
	for (i = 0; i < core->n_threads; i++)
		len += core->threads[i]->n_seccomp_chain * sizeof(struct rst_seccomp);
	return len + 64;
}

static void chain_out(const ProcCore *core, const ThreadCore *tc, size_t from,
		      const uint64_t *prog_at, struct rst_seccomp *out)
{
	size_t k;

	for (k = from; k < tc->n_seccomp_chain; k++) {
		const SeccompFilter *f = core->seccomp_filters[tc->seccomp_chain[k]];

		out[k - from] = (struct rst_seccomp){ prog_at[tc->seccomp_chain[k]],
						      f->prog.len / INSN_SIZE, f->flags };
	}
}

int seccomp_layout(const ProcCore *core, struct rst_args *a, struct rst_thread *t,
		   uint8_t *buf, uint64_t addr)
{
	uint64_t prog_at[SECCOMP_MAX_FILTERS * 2];
	size_t off = 0, shared, i;
	struct rst_seccomp *out;
	int ret;

	ret = seccomp_validate(core);
	if (ret || !seccomp_in_use(core))
		return ret;
	if (core->n_seccomp_filters > ARRAY_SIZE(prog_at))
		return -E2BIG;
	for (i = 0; i < core->n_seccomp_filters; i++) {
		const SeccompFilter *f = core->seccomp_filters[i];

		memcpy(buf + off, f->prog.data, f->prog.len);
		prog_at[i] = addr + off;
		off += f->prog.len;
	}
	out = (struct rst_seccomp *)(buf + off);	/* 8-aligned: programs are 8-byte units */
	shared = shared_prefix(core);
	chain_out(core, core->threads[0], 0, prog_at, out);
	a->nr_seccomp_shared = shared;
	a->seccomp_shared = addr + ((uint8_t *)out - buf);
	out += shared;
	for (i = 0; i < core->n_threads; i++) {
		const ThreadCore *tc = core->threads[i];

		t[i].seccomp_strict = thread_mode(tc) == SECCOMP_MODE_STRICT;
		t[i].nr_seccomp = tc->n_seccomp_chain - shared * !!tc->n_seccomp_chain;
		t[i].seccomp = addr + ((uint8_t *)out - buf);
		chain_out(core, tc, tc->n_seccomp_chain ? shared : 0, prog_at, out);
		out += t[i].nr_seccomp;
	}
	return 0;
}
