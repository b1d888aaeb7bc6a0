// SPDX-License-Identifier: MIT
/*
 * Files of a restored process. ferry does not copy file systems: mapped and
 * open files must be at the same paths with the same size and mtime. The fds
 * are opened here (with their offsets and flags) and handed to the new
 * process by SCM_RIGHTS: they share the open file descriptions we made.
 */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "dest-agent/restore.h"
#include "proto/image.h"

static uint64_t mtime_ns(const struct stat *st)
{
	return st->st_mtim.tv_sec * 1000000000ULL + st->st_mtim.tv_nsec;
}

static int check_one(const char *what, const char *path, bool has_size, uint64_t size,
		     bool has_mtime, uint64_t mtime)
{
	struct stat st;

	if (stat(path, &st)) {
		pr_err("%s %s is missing here: %m", what, path);
		return -ENOENT;
	}
	if (has_size && (uint64_t)st.st_size != size) {
		pr_err("%s %s differs here (size %lld, expected %llu): refusing to restore", what,
		       path, (long long)st.st_size, (unsigned long long)size);
		return -ESTALE;
	}
	if (has_mtime && mtime_ns(&st) != mtime) {
		pr_err("%s %s was modified since the dump (mtime differs): refusing to restore",
		       what, path);
		return -ESTALE;
	}
	return 0;
}

int rst_check_files(const MmEntry *mm, const FilesEntry *files)
{
	size_t i;
	int ret;

	for (i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *v = mm->vmas[i];

		if (v->kind != VMA_KIND__VMA_FILE)
			continue;
		ret = check_one("mapped file", v->path, v->has_file_size, v->file_size,
				v->has_file_mtime_ns, v->file_mtime_ns);
		if (ret)
			return ret;
	}
	for (i = 0; i < files->n_fds; i++) {
		const FdEntry *f = files->fds[i];

		/* A file the process writes to may change size under it: size only if read-only. */
		if (f->type != FD_TYPE__FD_REG || f->ghost || f->has_shmid)
			continue;
		ret = check_one("open file", f->path, (f->flags & O_ACCMODE) == O_RDONLY, f->size,
				false, 0);
		if (ret)
			return ret;
	}
	return 0;
}

/* A new description of the shared memory object's memfd, with the saved flags and offset. */
static int open_shm(const FdEntry *f, const struct shm_table *shm)
{
	char path[64];
	int fd, ret;

	ret = shm_path(shm, f->shmid, path, sizeof(path));
	if (ret)
		return ret;
	fd = open(path, (f->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY)) | O_CLOEXEC);
	if (fd < 0 || lseek(fd, f->pos, SEEK_SET) < 0) {
		ret = -errno;
		if (fd >= 0)
			close(fd);
		return ret;
	}
	return fd;
}

static int open_reg(const FdEntry *f, int round_dirfd, const struct shm_table *shm)
{
	int fd;

	if (f->has_shmid)
		return open_shm(f, shm);
	if (f->ghost)
		return open_ghost(f, round_dirfd);
	fd = open(f->path, (f->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY)) | O_CLOEXEC);

	if (fd < 0) {
		pr_perror("cannot reopen %s", f->path);
		return -errno;
	}
	if (f->type == FD_TYPE__FD_REG && lseek(fd, f->pos, SEEK_SET) < 0) {
		pr_perror("cannot seek %s to %llu", f->path, (unsigned long long)f->pos);
		close(fd);
		return -errno;
	}
	return fd;
}

static int open_chr(const FdEntry *f)
{
	int fd = open(f->path, (f->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY)) | O_CLOEXEC);

	if (fd < 0) {
		pr_warn("fd %u: %s cannot be opened here (%m): /dev/null instead", f->fd, f->path);
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	}
	return fd < 0 ? -errno : fd;
}

static int pipe_fill(int wfd, int round_dirfd, uint64_t id)
{
	PipeDataEntry *pd;
	char name[64];
	int ret;

	snprintf(name, sizeof(name), "pipe-%llu.img", (unsigned long long)id);
	if (faccessat(round_dirfd, name, F_OK, 0))
		return 0;
	ret = img_load_one(round_dirfd, name, &pipe_data_entry__descriptor, (void **)&pd);
	if (ret)
		return ret;
	if (pd->data.len > 65536)
		fcntl(wfd, F_SETPIPE_SZ, pd->data.len);
	ret = write_full(wfd, pd->data.data, pd->data.len);
	protobuf_c_message_free_unpacked(&pd->base, NULL);
	return ret;
}

/* Keys of the descriptions: one per file id; a pipe's two ends; else one per fd. */
#define KEY_PIPE	(1ULL << 63)
#define KEY_UNIQUE	(1ULL << 62)
#define KEY_SOCK	(1ULL << 61)

static bool sock_paired(const FdEntry *f)
{
	return f->type == FD_TYPE__FD_SOCK && f->sock && f->sock->has_peer_ino;
}

static uint64_t fd_key(struct open_files *of, const FdEntry *f)
{
	if (f->type == FD_TYPE__FD_PIPE)
		return KEY_PIPE | f->pipe_id << 1 | ((f->flags & O_ACCMODE) != O_RDONLY);
	if (sock_paired(f))
		return KEY_SOCK | f->sock->ino;
	if (f->has_file_id)
		return f->file_id;
	return KEY_UNIQUE | of->next_unique++;
}

static struct open_file *of_entry(const struct open_files *of, uint64_t key)
{
	size_t i;

	for (i = 0; i < of->nr; i++)
		if (of->v[i].key == key)
			return &of->v[i];
	return NULL;
}

static int of_find(const struct open_files *of, uint64_t key)
{
	struct open_file *e = of_entry(of, key);

	return e ? e->fd : -1;
}

static int of_add(struct open_files *of, uint64_t key, int fd)
{
	if (grow_array(&of->v, &of->cap, of->nr, sizeof(*of->v)))
		return -ENOMEM;
	of->v[of->nr++] = (struct open_file){ key, fd, false };
	return 0;
}

/*
 * A new pipe for a saved one: both ends are registered (a process of the
 * tree may hold either), its unread data goes in first. An end nobody in
 * the tree held is closed when the tree is restored: its holder stayed on
 * the source host.
 */
static int open_pipe(struct open_files *of, const FdEntry *f, int round_dirfd)
{
	uint64_t key = KEY_PIPE | f->pipe_id << 1;
	int p[2], ret;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	ret = pipe_fill(p[1], round_dirfd, f->pipe_id);
	if (!ret)
		ret = of_add(of, key, p[0]);
	if (!ret)
		return of_add(of, key | 1, p[1]);
	close(p[0]);
	close(p[1]);
	return ret;
}

static int set_opt(int s, int level, int name, bool has, bool v)
{
	int i = v;

	return has && setsockopt(s, level, name, &i, sizeof(i)) ? -errno : 0;
}

/*
 * A listening or bound socket again: same family, type, options and
 * address (a unix socket file left behind by the source is replaced).
 * Connections that waited in the source's accept queue are not here.
 */
static int open_sock(const FdEntry *f)
{
	const SockEntry *se = f->sock;
	const struct sockaddr_un *un;
	struct stat st;
	int s, ret;

	if (!se || se->addr.len > sizeof(struct sockaddr_storage)) {
		pr_err("fd %u: socket without a usable description", f->fd);
		return -EINVAL;
	}
	s = socket(se->family, se->type | SOCK_CLOEXEC, se->protocol);
	if (s < 0)
		return -errno;
	un = (const struct sockaddr_un *)se->addr.data;
	if (se->family == AF_UNIX && un->sun_path[0] && !lstat(un->sun_path, &st) &&
	    S_ISSOCK(st.st_mode))
		unlink(un->sun_path);
	ret = set_opt(s, SOL_SOCKET, SO_REUSEADDR, se->has_reuseaddr, se->reuseaddr);
	if (!ret)
		ret = set_opt(s, SOL_SOCKET, SO_REUSEPORT, se->has_reuseport, se->reuseport);
	if (!ret)
		ret = set_opt(s, IPPROTO_IPV6, IPV6_V6ONLY, se->has_v6only, se->v6only);
	if (!ret && bind(s, (const struct sockaddr *)se->addr.data, se->addr.len))
		ret = -errno;
	if (!ret && se->listening && listen(s, SOMAXCONN))
		ret = -errno;
	if (!ret && fcntl(s, F_SETFL, f->flags & O_NONBLOCK))
		ret = -errno;
	if (ret) {
		pr_err("fd %u: cannot make its socket again here: %s", f->fd, strerror(-ret));
		close(s);
		return ret;
	}
	return s;
}

/*
 * Both ends of a connected unix socket of the tree from one socketpair (the
 * other end is registered for whoever holds it).
 */
static int open_sock_pair(struct open_files *of, const FdEntry *f, uint64_t key)
{
	int sv[2], ret;

	if (socketpair(AF_UNIX, f->sock->type | SOCK_CLOEXEC, 0, sv))
		return -errno;
	ret = of_add(of, key, sv[0]);
	if (!ret)
		ret = of_add(of, KEY_SOCK | f->sock->peer_ino, sv[1]);
	if (ret) {
		close(sv[0]);
		close(sv[1]);
		return ret;
	}
	return sv[0];
}

/* What waited unread on this end goes in again, written by its peer, once. */
static int sock_feed(struct open_files *of, const FdEntry *f)
{
	struct open_file *me = of_entry(of, KEY_SOCK | f->sock->ino);
	int peer = of_find(of, KEY_SOCK | f->sock->peer_ino);

	if (!me || me->fed || !f->sock->queued.len)
		return 0;
	me->fed = true;
	if (peer < 0) {
		pr_err("fd %u: its unix socket's peer is not in the restored tree", f->fd);
		return -ENOTCONN;
	}
	return write_full(peer, f->sock->queued.data, f->sock->queued.len);
}

/* epoll, eventfd, signalfd: made empty here (an epoll's interest list comes later). */
static int open_anon(const FdEntry *f)
{
	sigset_t mask;
	int fd, sig;

	switch (f->type) {
	case FD_TYPE__FD_EPOLL:
		fd = epoll_create1(EPOLL_CLOEXEC);
		break;
	case FD_TYPE__FD_EVENTFD:
		fd = eventfd(f->counter, EFD_CLOEXEC | (f->semaphore ? EFD_SEMAPHORE : 0));
		break;
	default:
		sigemptyset(&mask);
		for (sig = 1; sig <= 64; sig++)
			if (f->counter >> (sig - 1) & 1)
				sigaddset(&mask, sig);
		fd = signalfd(-1, &mask, SFD_CLOEXEC);
		break;
	}
	if (fd < 0)
		return -errno;
	if (fcntl(fd, F_SETFL, f->flags & O_NONBLOCK)) {
		close(fd);
		return -errno;
	}
	return fd;
}

static int fd_index(const FilesEntry *fe, uint32_t fd)
{
	size_t j;

	for (j = 0; j < fe->n_fds; j++)
		if (fe->fds[j]->fd == fd)
			return j;
	return -1;
}

/*
 * In a child of ours: the process's fds at their own numbers, then every
 * watch added again. An epoll remembers the fd number a file was added
 * with (fdinfo's "tfd:"), so it must be the process's own number.
 */
static int __attribute__((noreturn)) epoll_child(const FilesEntry *fe, const int *out, int high)
{
	size_t i, k;
	int *mine = calloc(fe->n_fds + 1, sizeof(int));

	if (!mine)
		_exit(1);
	for (i = 0; i < fe->n_fds; i++) {
		mine[i] = fcntl(out[i], F_DUPFD, high);
		if (mine[i] < 0)
			_exit(1);
	}
	for (i = 0; i < fe->n_fds; i++)
		if (fe->fds[i]->type != FD_TYPE__FD_EPOLL && dup2(mine[i], fe->fds[i]->fd) < 0)
			_exit(1);
	for (i = 0; i < fe->n_fds; i++) {
		const FdEntry *f = fe->fds[i];

		for (k = 0; f->type == FD_TYPE__FD_EPOLL && k < f->n_epoll; k++) {
			const EpollTfd *t = f->epoll[k];
			struct epoll_event ev = { .events = t->events, .data.u64 = t->data };
			int j = fd_index(fe, t->fd);

			if (j < 0 || fe->fds[j]->type == FD_TYPE__FD_EPOLL)
				continue;	/* closed since it was added: nothing to watch */
			if (epoll_ctl(mine[i], EPOLL_CTL_ADD, t->fd, &ev) && errno != EEXIST)
				_exit(2);
		}
	}
	_exit(0);
}

/* Every file an epoll of this process watched, watched again (the process's fds are all open). */
static int epoll_refill(const FilesEntry *fe, const int *out)
{
	bool watches = false;
	int high = 0, status;
	size_t i;
	pid_t c;

	for (i = 0; i < fe->n_fds; i++) {
		watches |= fe->fds[i]->type == FD_TYPE__FD_EPOLL && fe->fds[i]->n_epoll;
		if ((int)fe->fds[i]->fd + 1 > high)
			high = fe->fds[i]->fd + 1;
	}
	if (!watches)
		return 0;
	c = fork();
	if (c < 0)
		return -errno;
	if (c == 0)
		epoll_child(fe, out, high + 64);
	if (waitpid(c, &status, 0) < 0)
		return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		pr_err("cannot add the watches of an epoll again");
		return -EIO;
	}
	return 0;
}

static int open_one(struct open_files *of, const FdEntry *f, uint64_t key, int round_dirfd,
		    const struct shm_table *shm)
{
	int fd, ret;

	switch (f->type) {
	case FD_TYPE__FD_PIPE:
		ret = open_pipe(of, f, round_dirfd);
		return ret ? ret : of_find(of, key);
	case FD_TYPE__FD_CHR:
		fd = open_chr(f);
		break;
	case FD_TYPE__FD_SOCK:
		if (sock_paired(f))
			return open_sock_pair(of, f, key);
		fd = open_sock(f);
		break;
	case FD_TYPE__FD_EPOLL:
	case FD_TYPE__FD_EVENTFD:
	case FD_TYPE__FD_SIGNALFD:
		fd = open_anon(f);
		break;
	default:
		fd = open_reg(f, round_dirfd, shm);
		break;
	}
	if (fd < 0)
		return fd;
	ret = of_add(of, key, fd);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

int rst_open_fds(struct open_files *of, const FilesEntry *fe, int round_dirfd,
		 const struct shm_table *shm, int **outp)
{
	int *out = calloc(fe->n_fds + 1, sizeof(int));
	size_t i;
	int fd = 0;

	if (!out)
		return -ENOMEM;
	for (i = 0; i < fe->n_fds && fd >= 0; i++) {
		const FdEntry *f = fe->fds[i];
		uint64_t key = fd_key(of, f);

		fd = of_find(of, key);
		if (fd < 0)
			fd = open_one(of, f, key, round_dirfd, shm);
		if (fd >= 0 && sock_paired(f)) {
			int ret = sock_feed(of, f);

			fd = ret < 0 ? ret : fd;
		}
		if (fd < 0)
			pr_err("cannot restore fd %u (%s): %s", f->fd, f->path ? f->path : "pipe",
			       strerror(-fd));
		out[i] = fd;
	}
	if (fd >= 0)
		fd = epoll_refill(fe, out);
	if (fd < 0) {
		free(out);
		return fd;
	}
	*outp = out;
	return 0;
}

void open_files_close(struct open_files *of)
{
	size_t i;

	for (i = 0; i < of->nr; i++)
		close(of->v[i].fd);
	free(of->v);
	memset(of, 0, sizeof(*of));
}
