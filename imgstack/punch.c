// SPDX-License-Identifier: MIT
/*
 * Punching out of older rounds' pages files the data that a newer round
 * replaced. Online (auto-dedup) the writer collects the ranges while it
 * overlays a round; offline, stack_dedup (imgstack/dedup.c) finds them from
 * the top view. Either way only data no round above needs goes, so a
 * restore from the top is unchanged.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "imgstack/punch.h"
#include "proto/image.h"

int punch_list_add(void *list, uint32_t pid, uint32_t round, uint64_t file_off, uint64_t len)
{
	struct punch_list *pl = list;

	if (grow_array(&pl->r, &pl->cap, pl->nr, sizeof(*pl->r)))
		return -ENOMEM;
	pl->r[pl->nr++] = (struct punch_range){ pid, round, file_off, len };
	return 0;
}

void punch_list_free(struct punch_list *pl)
{
	free(pl->r);
	memset(pl, 0, sizeof(*pl));
}

static void list_swap(struct punch_list *a, struct punch_list *b)
{
	struct punch_list t = *a;

	*a = *b;
	*b = t;
}

static int cmp_range(const void *a, const void *b)
{
	const struct punch_range *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->round != y->round)
		return x->round < y->round ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Sort, then fold ranges that touch or overlap into one. */
static void punch_list_merge(struct punch_list *pl)
{
	size_t i, n = 0;

	if (!pl->nr)
		return;
	qsort(pl->r, pl->nr, sizeof(*pl->r), cmp_range);
	for (i = 1; i < pl->nr; i++) {
		struct punch_range *last = &pl->r[n], *r = &pl->r[i];

		if (r->pid == last->pid && r->round == last->round &&
		    r->off <= last->off + last->len) {
			if (r->off + r->len > last->off + last->len)
				last->len = r->off + r->len - last->off;
			continue;
		}
		pl->r[++n] = *r;
	}
	pl->nr = n + 1;
}

/* Bytes of data (not holes) in [off, off + len) of @fd. */
static int data_bytes(int fd, uint64_t off, uint64_t len, uint64_t *bytes)
{
	uint64_t end = off + len;
	off_t d, h;

	*bytes = 0;
	while (off < end) {
		d = lseek(fd, off, SEEK_DATA);
		if (d < 0)
			return errno == ENXIO ? 0 : -errno;
		if ((uint64_t)d >= end)
			break;
		h = lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			return -errno;
		*bytes += ((uint64_t)h < end ? (uint64_t)h : end) - d;
		off = h;
	}
	return 0;
}

static int punch_one(int fd, const struct punch_range *r, uint64_t *bytes)
{
	uint64_t data;
	int ret;

	ret = data_bytes(fd, r->off, r->len, &data);
	if (ret || !data)
		return ret;	/* already a hole: nothing to free, nothing to count */
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, r->off, r->len))
		return -errno;
	*bytes += data;
	return 0;
}

static int open_pages(int stack_dirfd, uint32_t round, uint32_t pid)
{
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "%u/" PAGES_NAME_FMT, round, pid);
	fd = openat(stack_dirfd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		pr_perror("cannot open %s for dedup", name);
	return fd < 0 ? -errno : fd;
}

int punch_list_run(struct punch_list *pl, int stack_dirfd, uint64_t *bytes)
{
	size_t i;
	int fd = -1, ret = 0;

	punch_list_merge(pl);
	for (i = 0; !ret && i < pl->nr; i++) {
		const struct punch_range *r = &pl->r[i];

		if (!i || r->pid != r[-1].pid || r->round != r[-1].round) {
			if (fd >= 0)
				close(fd);
			fd = open_pages(stack_dirfd, r->round, r->pid);
			if (fd < 0) {
				ret = fd;
				break;
			}
		}
		ret = punch_one(fd, r, bytes);
		if (ret) {
			errno = -ret;
			pr_perror("cannot punch round %u pid %u at %#llx+%#llx", r->round, r->pid,
				  (unsigned long long)r->off, (unsigned long long)r->len);
		}
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

/*
 * Auto-dedup's punching runs on its own thread: on a disk that discards
 * freed blocks a punch costs ~0.1 ms, so a 1%-dirty round of a 1 GiB
 * process would hold its commit (and the final round's ack) for ~250 ms.
 */
struct punch_queue {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct punch_list pending;	/* handed over, not yet taken by the thread */
	int stack_dirfd;
	bool stop;
	int err;			/* first failure */
	uint64_t bytes;
};

static void *punch_thread(void *arg)
{
	struct punch_queue *q = arg;
	struct punch_list work = { 0 };
	int ret;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (!q->pending.nr && !q->stop)
			pthread_cond_wait(&q->cond, &q->lock);
		if (!q->pending.nr)
			break;
		work.nr = 0;
		list_swap(&work, &q->pending);
		pthread_mutex_unlock(&q->lock);
		ret = punch_list_run(&work, q->stack_dirfd, &q->bytes);
		pthread_mutex_lock(&q->lock);
		if (ret && !q->err)
			q->err = ret;
	}
	pthread_mutex_unlock(&q->lock);
	punch_list_free(&work);
	return NULL;
}

int punch_queue_start(int stack_dirfd, struct punch_queue **out)
{
	struct punch_queue *q = calloc(1, sizeof(*q));
	int ret;

	if (!q)
		return -ENOMEM;
	q->stack_dirfd = stack_dirfd;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	ret = -pthread_create(&q->thread, NULL, punch_thread, q);
	if (ret) {
		pthread_cond_destroy(&q->cond);
		pthread_mutex_destroy(&q->lock);
		free(q);
		return ret;
	}
	*out = q;
	return 0;
}

int punch_queue_push(struct punch_queue *q, struct punch_list *pl)
{
	size_t i;
	int ret = 0;

	pthread_mutex_lock(&q->lock);
	if (!q->pending.nr) {
		list_swap(&q->pending, pl);
	} else {
		for (i = 0; !ret && i < pl->nr; i++) {
			const struct punch_range *r = &pl->r[i];

			ret = punch_list_add(&q->pending, r->pid, r->round, r->off, r->len);
		}
		if (!ret)
			pl->nr = 0;
	}
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	return ret;
}

int punch_queue_stop(struct punch_queue *q, uint64_t *bytes)
{
	int ret;

	if (!q)
		return 0;
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->thread, NULL);
	ret = q->err;
	if (bytes)
		*bytes = q->bytes;
	punch_list_free(&q->pending);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	free(q);
	return ret;
}
