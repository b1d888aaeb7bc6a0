// SPDX-License-Identifier: MIT
/* Local sink: rounds go straight into an image stack on this host. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "transport/sink.h"

struct sink_local {
	struct sink sink;
	struct stack_writer *sw;
	bool in_round;
};

#define to_local(s) ((struct sink_local *)(s))

static int local_fail(struct sink *s, const char *what, int err)
{
	snprintf(s->error, sizeof(s->error), "%s: %s", what, strerror(-err));
	return err;
}

static int local_round_begin(struct sink *s, uint32_t round, bool final)
{
	struct sink_local *sl = to_local(s);
	int ret;

	if (sl->in_round)
		return -EINVAL;
	ret = stack_round_begin(sl->sw, round, final);
	if (ret)
		return local_fail(s, "cannot begin round", ret);
	sl->in_round = true;
	return 0;
}

static int local_add_pages(struct sink *s, uint32_t pid, uint64_t vaddr, uint64_t nr_pages,
			   const void *data)
{
	int ret = stack_add_pages(to_local(s)->sw, pid, vaddr, nr_pages, data);

	if (ret)
		return local_fail(s, "cannot store pages", ret);
	if (data)
		s->stats.raw_bytes += nr_pages * 4096;
	return 0;
}

static int local_add_file(struct sink *s, const char *name, const void *data, size_t len)
{
	int ret = stack_add_file(to_local(s)->sw, name, data, len);

	return ret ? local_fail(s, name, ret) : 0;
}

static int local_round_end(struct sink *s, struct round_stats *st)
{
	struct sink_local *sl = to_local(s);
	struct round_stats tmp;
	int ret;

	if (!sl->in_round)
		return -EINVAL;
	sl->in_round = false;
	ret = stack_round_commit(sl->sw, st ? st : &tmp);
	if (ret) {
		stack_round_abort(sl->sw);
		return local_fail(s, "cannot commit round", ret);
	}
	s->next_round = stack_writer_next_round(sl->sw);
	return 0;
}

static int local_wait_restore(struct sink *s, struct restore_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	snprintf(rep->error, sizeof(rep->error), "local images: nothing restored");
	snprintf(s->error, sizeof(s->error), "local images: nothing restored");
	return -EOPNOTSUPP;
}

static void local_close(struct sink *s)
{
	struct sink_local *sl = to_local(s);

	if (sl->in_round)
		stack_round_abort(sl->sw);
	stack_writer_close(sl->sw);
	free(sl);
}

static const struct sink_ops local_ops = {
	.round_begin	= local_round_begin,
	.add_pages	= local_add_pages,
	.add_file	= local_add_file,
	.round_end	= local_round_end,
	.wait_restore	= local_wait_restore,
	.close		= local_close,
};

int sink_local_open(const char *images_dir, const char *id, struct sink **out)
{
	struct sink_local *sl = calloc(1, sizeof(*sl));
	char why[256];
	int ret;

	if (!sl)
		return -ENOMEM;
	sl->sink.prefilled_round = -1;
	ret = stack_writer_open(images_dir, id, false, &sl->sw);
	if (ret) {
		snprintf(why, sizeof(why), "cannot open an image stack in %.200s: %s", images_dir,
			 strerror(-ret));
		pr_info("%s", why);
		sink_set_open_error(why);
		free(sl);
		return ret;
	}
	sl->sink.ops = &local_ops;
	snprintf(sl->sink.migration_id, sizeof(sl->sink.migration_id), "%s",
		 stack_writer_id(sl->sw));
	sl->sink.next_round = stack_writer_next_round(sl->sw);
	*out = &sl->sink;
	sink_set_open_error("");
	return 0;
}
