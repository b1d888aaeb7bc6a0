/* SPDX-License-Identifier: MIT */
#ifndef FERRY_HOOK_H
#define FERRY_HOOK_H

#include <stddef.h>
#include <sys/types.h>

/*
 * migrate --hook PHASE=CMD (docs/network.md, Hooks): shell commands run by
 * the source's migrate at points of the migration, like CRIU's action
 * scripts.
 */
enum hook_phase {
	HOOK_FREEZE,		/* the tree is frozen for the last time, its state dumped */
	HOOK_RESTORED,		/* the destination holds the restored tree, before commit */
	HOOK_ROLLBACK,		/* after a failure at or after the freeze: the source runs again */
	HOOK_DONE,		/* migrated: the destination runs it, the source is killed */
	NR_HOOK_PHASES
};

#define MAX_HOOKS		16
#define HOOK_TIMEOUT_S		30	/* default deadline of one hook */

struct hooks {
	struct hook {
		enum hook_phase phase;
		const char *cmd;
	} v[MAX_HOOKS];
	size_t nr;
	unsigned int timeout_s;
};

/* What a hook's environment says (FERRY_*). */
struct hook_env {
	pid_t pid;
	const char *migration_id;
	const char *dest;		/* HOST:PORT, or the images directory */
	const char *move_address;	/* ADDR/PREFIX, or NULL */
};

/* "PHASE=CMD" added to @h: 0, or -EINVAL with the reason in @why. */
int hook_parse(struct hooks *h, const char *arg, char *why, size_t len);
/*
 * Every hook of @phase, in the order given, each under its deadline. 0 if
 * all exited 0; else -ECANCELED (or -errno), the failure said once.
 */
int hooks_run(const struct hooks *h, enum hook_phase phase, const struct hook_env *env);

#endif
