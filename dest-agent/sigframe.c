// SPDX-License-Identifier: MIT
/*
 * The rt_sigframe the restorer returns through: rt_sigreturn loads every
 * general register, the signal mask, the altstack and (through fpstate) the
 * FPU/vector state of the saved thread.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/user.h>
#include <ucontext.h>

#include "common/log.h"
#include "common/ptrace.h"
#include "dest-agent/restore.h"

#define FX_SW_OFF		464
#define XSTATE_BV_OFF		512
#define UC_FP_XSTATE		0x1
#define UC_SIGCONTEXT_SS	0x2
#define UC_STRICT_RESTORE_SS	0x4

/* Kernel layouts (arch/x86/include/uapi/asm/sigcontext.h, asm-generic/ucontext.h). */
struct k_sigcontext {
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
	uint16_t cs, gs, fs, ss;
	uint64_t err, trapno, oldmask, cr2, fpstate;
	uint64_t reserved[8];
};

struct k_ucontext {
	uint64_t uc_flags, uc_link;
	uint64_t ss_sp;
	int32_t ss_flags, pad;
	uint64_t ss_size;
	struct k_sigcontext mc;
	uint64_t sigmask;
};

struct k_rt_sigframe {
	uint64_t pretcode;
	struct k_ucontext uc;
	uint8_t info[128];
};

/* What this kernel writes into (and so accepts back from) a signal frame. */
static uint32_t sig_xstate_size;
static uint64_t sig_xfeatures;

static void probe_handler(int sig, siginfo_t *si, void *ctx)
{
	const uint8_t *fp = (const uint8_t *)((ucontext_t *)ctx)->uc_mcontext.fpregs;
	uint32_t magic;

	(void)sig;
	(void)si;
	memcpy(&magic, fp + FX_SW_OFF, 4);
	if (magic != FP_XSTATE_MAGIC1)
		return;
	memcpy(&sig_xfeatures, fp + FX_SW_OFF + 8, 8);
	memcpy(&sig_xstate_size, fp + FX_SW_OFF + 16, 4);
}

int rst_probe_xstate(void)
{
	struct sigaction sa = { .sa_sigaction = probe_handler, .sa_flags = SA_SIGINFO }, old;

	if (sigaction(SIGUSR2, &sa, &old))
		return -errno;
	raise(SIGUSR2);
	sigaction(SIGUSR2, &old, NULL);
	if (!sig_xstate_size) {
		pr_err("cannot learn the signal frame's xstate layout");
		return -ENOTSUP;
	}
	pr_debug("signal frame xstate: %u bytes, features %#llx", sig_xstate_size,
		 (unsigned long long)sig_xfeatures);
	return 0;
}

size_t rst_sigframe_size(void)
{
	return sizeof(struct k_rt_sigframe);
}

static void regs_to_sigcontext(const struct user_regs_struct *r, struct k_sigcontext *mc)
{
	mc->r8 = r->r8, mc->r9 = r->r9, mc->r10 = r->r10, mc->r11 = r->r11;
	mc->r12 = r->r12, mc->r13 = r->r13, mc->r14 = r->r14, mc->r15 = r->r15;
	mc->rdi = r->rdi, mc->rsi = r->rsi, mc->rbp = r->rbp, mc->rbx = r->rbx;
	mc->rdx = r->rdx, mc->rax = r->rax, mc->rcx = r->rcx, mc->rsp = r->rsp;
	mc->rip = r->rip, mc->eflags = r->eflags;
	mc->cs = 0x33;
	mc->ss = 0x2b;
}

int rst_build_sigframe(const ThreadCore *tc, struct rst_thread *t, uint8_t *frame_local,
		       uint64_t xsave_addr, uint8_t *xsave_local)
{
	struct k_rt_sigframe *f = (struct k_rt_sigframe *)frame_local;
	struct user_regs_struct regs;
	uint64_t bv;
	uint32_t v;

	if (tc->regs.len != sizeof(regs)) {
		pr_err("thread %u: registers of %zu bytes, expected %zu", tc->tid, tc->regs.len,
		       sizeof(regs));
		return -EINVAL;
	}
	if (tc->xstate.len < sig_xstate_size || tc->xstate.len < XSTATE_BV_OFF + 64) {
		pr_err("thread %u: xstate of %zu bytes, this CPU needs %u", tc->tid, tc->xstate.len,
		       sig_xstate_size);
		return -EINVAL;
	}
	memcpy(&regs, tc->regs.data, sizeof(regs));
	regs_sleep_left(&regs);
	/* Interrupted syscalls run again, as the kernel would have done. */
	regs_fixup_restart(&regs, false);
	t->tid = tc->tid;
	t->fs_base = regs.fs_base;
	t->gs_base = regs.gs_base;
	if (tc->has_rseq_addr && tc->rseq_addr) {
		t->rseq_addr = tc->rseq_addr;
		t->rseq_len = tc->rseq_len;
		t->rseq_sig = tc->rseq_sig;
	}
	t->clear_tid = tc->has_clear_tid_addr ? tc->clear_tid_addr : 0;
	if (tc->comm)
		snprintf(t->comm, sizeof(t->comm), "%s", tc->comm);

	memset(f, 0, sizeof(*f));
	f->uc.uc_flags = UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
	regs_to_sigcontext(&regs, &f->uc.mc);
	f->uc.mc.fpstate = xsave_addr;
	f->uc.sigmask = tc->sigmask;
	f->uc.ss_sp = tc->altstack_sp;
	f->uc.ss_flags = tc->altstack_flags & ~SS_ONSTACK;
	f->uc.ss_size = tc->altstack_size;

	/* The saved XSAVE image, cut to what this kernel's frames hold. */
	memcpy(xsave_local, tc->xstate.data, sig_xstate_size);
	memcpy(&bv, xsave_local + XSTATE_BV_OFF, 8);
	bv &= sig_xfeatures;
	memcpy(xsave_local + XSTATE_BV_OFF, &bv, 8);
	v = FP_XSTATE_MAGIC1;
	memcpy(xsave_local + FX_SW_OFF, &v, 4);
	v = sig_xstate_size + 4;
	memcpy(xsave_local + FX_SW_OFF + 4, &v, 4);
	memcpy(xsave_local + FX_SW_OFF + 8, &sig_xfeatures, 8);
	memcpy(xsave_local + FX_SW_OFF + 16, &sig_xstate_size, 4);
	v = FP_XSTATE_MAGIC2;
	memcpy(xsave_local + sig_xstate_size, &v, 4);
	return 0;
}

/* Room the XSAVE image of one signal frame takes (with the trailing magic). */
size_t rst_xsave_size(void)
{
	return sig_xstate_size + 4;
}
