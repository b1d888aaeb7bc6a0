// SPDX-License-Identifier: MIT
/*
 * Hooks: `sh -c CMD` at a phase of the migration, in a process group of its
 * own, stdin /dev/null, stdout to our stderr (our stdout carries the round
 * lines), under a deadline after which the whole group is killed. Its
 * environment says where the migration is (hook.h). What a failure means
 * is the caller's business: before the commit it rolls the migration back,
 * after it it can only be reported.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/hook.h"

static const char *const phase_names[NR_HOOK_PHASES] = {
	[HOOK_FREEZE] = "freeze",
	[HOOK_RESTORED] = "restored",
	[HOOK_ROLLBACK] = "rollback",
	[HOOK_DONE] = "done",
};

int hook_parse(struct hooks *h, const char *arg, char *why, size_t len)
{
	const char *eq = strchr(arg, '=');
	size_t i;

	if (!eq) {
		snprintf(why, len, "--hook wants PHASE=CMD (PHASE: freeze, restored, rollback or "
			 "done), not '%s'", arg);
		return -EINVAL;
	}
	for (i = 0; i < NR_HOOK_PHASES; i++)
		if (strlen(phase_names[i]) == (size_t)(eq - arg) &&
		    !strncmp(arg, phase_names[i], eq - arg))
			break;
	if (i == NR_HOOK_PHASES) {
		snprintf(why, len, "--hook: no phase '%.*s' (freeze, restored, rollback or done)",
			 (int)(eq - arg), arg);
		return -EINVAL;
	}
	if (!eq[1] || strspn(eq + 1, " \t") == strlen(eq + 1)) {
		snprintf(why, len, "--hook %s=: the command is empty", phase_names[i]);
		return -EINVAL;
	}
	if (h->nr == MAX_HOOKS) {
		snprintf(why, len, "--hook: at most %d hooks", MAX_HOOKS);
		return -EINVAL;
	}
	h->v[h->nr].phase = i;
	h->v[h->nr].cmd = eq + 1;
	h->nr++;
	return 0;
}

/* In the child: the environment, the stdio, the default signal dispositions, then sh. */
static void hook_exec(const char *cmd, const char *phase, const struct hook_env *env)
{
	char pid[16];
	sigset_t none;
	int null, sig;

	setpgid(0, 0);
	for (sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);	/* we ignore SIGPIPE: the hook must not */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	null = open("/dev/null", O_RDONLY);
	if (null < 0 || dup2(null, 0) < 0 || dup2(2, 1) < 0)
		_exit(127);
	snprintf(pid, sizeof(pid), "%d", env->pid);
	if (setenv("FERRY_PHASE", phase, 1) || setenv("FERRY_PID", pid, 1) ||
	    setenv("FERRY_MIGRATION_ID", env->migration_id ? env->migration_id : "", 1) ||
	    setenv("FERRY_DEST", env->dest ? env->dest : "", 1))
		_exit(127);
	if (env->move_address)
		setenv("FERRY_MOVE_ADDRESS", env->move_address, 1);
	else
		unsetenv("FERRY_MOVE_ADDRESS");
	execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
	_exit(127);
}

/* One hook: 0 if it exited 0 within the deadline, else -ECANCELED (said). */
static int hook_run(const struct hook *k, unsigned int timeout_s, const struct hook_env *env)
{
	const char *phase = phase_names[k->phase];
	uint64_t deadline = now_us() + timeout_s * 1000000ULL;
	int status;
	pid_t pid, w;

	pr_info("hook %s: running %s", phase, k->cmd);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		pr_err("hook %s: cannot start '%s': %s", phase, k->cmd, strerror(errno));
		return -errno;
	}
	if (!pid)
		hook_exec(k->cmd, phase, env);
	setpgid(pid, pid);	/* also here: no race with the kill below */
	for (;;) {
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			pr_err("hook %s: cannot wait for '%s': %s", phase, k->cmd, strerror(errno));
			return -errno;
		}
		if (now_us() >= deadline) {
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			pr_err("hook %s '%s' did not finish within %u s: killed", phase, k->cmd,
			       timeout_s);
			return -ECANCELED;
		}
		usleep(10000);
	}
	kill(-pid, SIGKILL);	/* what it left in the background does not outlive its phase */
	if (WIFEXITED(status) && !WEXITSTATUS(status))
		return 0;
	if (WIFEXITED(status))
		pr_err("hook %s '%s' failed: exit status %d", phase, k->cmd, WEXITSTATUS(status));
	else
		pr_err("hook %s '%s' failed: killed by signal %d", phase, k->cmd,
		       WTERMSIG(status));
	return -ECANCELED;
}

int hooks_run(const struct hooks *h, enum hook_phase phase, const struct hook_env *env)
{
	size_t i;
	int ret;

	for (i = 0; i < h->nr; i++) {
		if (h->v[i].phase != phase)
			continue;
		ret = hook_run(&h->v[i], h->timeout_s ? h->timeout_s : HOOK_TIMEOUT_S, env);
		if (ret)
			return ret;
	}
	return 0;
}
