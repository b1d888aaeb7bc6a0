// SPDX-License-Identifier: MIT
/* migrate --hook (source-agent/hook.c): the environment a hook sees, its exit status. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "source-agent/hook.h"

static char out[64];

static void setup(void)
{
	int fd;

	snprintf(out, sizeof(out), "/tmp/ferry-test-hook.XXXXXX");
	fd = mkstemp(out);
	cr_assert_geq(fd, 0);
	close(fd);
}

static void teardown(void)
{
	unlink(out);
}

static void run_one(const char *spec, const struct hook_env *env, int want)
{
	struct hooks h = { 0 };
	char why[200];

	cr_assert_eq(hook_parse(&h, spec, why, sizeof(why)), 0, "%s", why);
	h.timeout_s = 10;
	cr_assert_eq(hooks_run(&h, HOOK_FREEZE, env), want);
}

static void read_out(char *buf, size_t len)
{
	FILE *f = fopen(out, "r");
	size_t n;

	cr_assert_not_null(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = 0;
	fclose(f);
}

Test(hook, environment, .init = setup, .fini = teardown)
{
	struct hook_env env = { .pid = 4242, .migration_id = "m-1", .dest = "host:7777",
				.move_address = "10.0.0.9/24" };
	char spec[512], buf[512];

	/* ours win over what migrate itself inherited; the rest passes through */
	setenv("FERRY_PHASE", "stale", 1);
	setenv("FERRY_MOVE_ADDRESS", "stale", 1);
	setenv("FERRY_TEST_KEEP", "kept", 1);
	snprintf(spec, sizeof(spec), "freeze=echo \"$FERRY_PHASE $FERRY_PID $FERRY_MIGRATION_ID "
		 "$FERRY_DEST $FERRY_MOVE_ADDRESS $FERRY_TEST_KEEP\" >%s", out);
	run_one(spec, &env, 0);
	read_out(buf, sizeof(buf));
	cr_expect_str_eq(buf, "freeze 4242 m-1 host:7777 10.0.0.9/24 kept\n");

	/* no move address: the variable is unset, not inherited */
	env.move_address = NULL;
	snprintf(spec, sizeof(spec), "freeze=echo \"${FERRY_MOVE_ADDRESS-unset}\" >%s", out);
	run_one(spec, &env, 0);
	read_out(buf, sizeof(buf));
	cr_expect_str_eq(buf, "unset\n");
	unsetenv("FERRY_PHASE");
	unsetenv("FERRY_MOVE_ADDRESS");
	unsetenv("FERRY_TEST_KEEP");
}

Test(hook, failure)
{
	struct hook_env env = { .pid = 1 };
	struct hooks h = { 0 };
	char why[200];

	run_one("freeze=exit 3", &env, -ECANCELED);
	/* a hook of another phase does not run */
	cr_assert_eq(hook_parse(&h, "done=exit 1", why, sizeof(why)), 0);
	cr_expect_eq(hooks_run(&h, HOOK_FREEZE, &env), 0);
	/* the deadline kills it */
	h.nr = 0;
	cr_assert_eq(hook_parse(&h, "freeze=sleep 30", why, sizeof(why)), 0);
	h.timeout_s = 1;
	cr_expect_eq(hooks_run(&h, HOOK_FREEZE, &env), -ECANCELED);
}
