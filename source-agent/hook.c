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
#include <stdbool.h>
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

/* FERRY_* variables a hook gets from us, never from our own environment. */
static const char *const env_names[] = {
	"FERRY_PHASE", "FERRY_PID", "FERRY_MIGRATION_ID", "FERRY_DEST", "FERRY_MOVE_ADDRESS",
};
#define NR_ENV	(sizeof(env_names) / sizeof(env_names[0]))

static bool env_ours(const char *kv)
{
	size_t i, n;

	for (i = 0; i < NR_ENV; i++) {
		n = strlen(env_names[i]);
		if (!strncmp(kv, env_names[i], n) && kv[n] == '=')
			return true;
	}
	return false;
}

static void hook_envp_free(char **envp, size_t owned)
{
	size_t i;

	for (i = 0; envp && i < owned; i++)
		free(envp[i]);
	free(envp);
}

/*
 * The hook's environment, built here before the fork: the child of a
 * threaded process (the sink's sender thread) may call nothing that
 * allocates, such as setenv. Our FERRY_* first (*owned of them, ours to
 * free), then the rest of our environment.
 */
static char **hook_envp(const char *phase, const struct hook_env *env, size_t *owned)
{
	const char *val[NR_ENV] = { phase, NULL, env->migration_id ? env->migration_id : "",
				    env->dest ? env->dest : "", env->move_address };
	char pid[16], **envp;
	size_t n = 0, k = 0, i;

	snprintf(pid, sizeof(pid), "%d", env->pid);
	val[1] = pid;
	while (environ[n])
		n++;
	envp = calloc(NR_ENV + n + 1, sizeof(*envp));
	if (!envp)
		return NULL;
	for (i = 0; i < NR_ENV; i++) {
		if (!val[i])
			continue;	/* unset: no move address */
		if (asprintf(&envp[k], "%s=%s", env_names[i], val[i]) < 0) {
			hook_envp_free(envp, k);
			return NULL;
		}
		k++;
	}
	*owned = k;
	for (i = 0; i < n; i++)
		if (!env_ours(environ[i]))
			envp[k++] = environ[i];
	return envp;
}

/* In the child: the stdio, the default signal dispositions, then sh (async-signal-safe only). */
static void hook_exec(const char *cmd, char **envp)
{
	char *const argv[] = { "sh", "-c", (char *)cmd, NULL };
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
	execve("/bin/sh", argv, envp);
	_exit(127);
}

/* One hook: 0 if it exited 0 within the deadline, else -ECANCELED (said). */
static int hook_run(const struct hook *k, unsigned int timeout_s, const struct hook_env *env)
{
	const char *phase = phase_names[k->phase];
	uint64_t deadline = now_us() + timeout_s * 1000000ULL;
	char **envp;
	size_t owned;
	int status, err;
	pid_t pid, w;

	pr_info("hook %s: running %s", phase, k->cmd);
	envp = hook_envp(phase, env, &owned);
	if (!envp) {
		pr_err("hook %s: cannot start '%s': out of memory", phase, k->cmd);
		return -ENOMEM;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	err = errno;
	if (!pid)
		hook_exec(k->cmd, envp);
	hook_envp_free(envp, owned);
	if (pid < 0) {
		pr_err("hook %s: cannot start '%s': %s", phase, k->cmd, strerror(err));
		return -err;
	}
	setpgid(pid, pid);	/* also here: no race with the kill below */
	for (;;) {
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			err = errno;
			kill(-pid, SIGKILL);	/* no hook outlives a wait we cannot make */
			pr_err("hook %s: cannot wait for '%s': %s", phase, k->cmd, strerror(err));
			return -err;
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
