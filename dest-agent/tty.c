// SPDX-License-Identifier: MIT
/*
 * Ptys (both ends in the tree): /dev/ptmx opened again until the kernel
 * gives the same index (it allocates the lowest free one: the lower ones
 * are held meanwhile, then let go); an index taken here fails the restore.
 * A pty that is a session's controlling terminal is made when its session
 * leader is forked (tty_ctty_fd), so that its processes inherit it; the
 * state of each end is set once every fd is open (->ready).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <asm/termbits.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "dest-agent/restore.h"

#define PTY_INDEX_MAX	(1u << 20)	/* the kernel's NR_UNIX98_PTY_MAX */
#define PTY_HOLD_MAX	4096		/* lower indexes held at once while looking for one */

static struct pty {
	uint32_t index;
	int master;		/* ours, until tty_restore_end */
	bool session;		/* a session's terminal since its leader's fork */
	bool master_taken;	/* the tree's master description made */
} *ptys;
static size_t nr_ptys, cap_ptys;

/* A new pty whose slave is /dev/pts/@index: its master fd, or -errno. */
static int pty_alloc(uint32_t index)
{
	int held[PTY_HOLD_MAX], nr = 0, fd = -1, ret;
	unsigned int n = 0;

	for (;;) {
		fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (fd < 0 || ioctl(fd, TIOCGPTN, &n)) {
			ret = -errno;
			break;
		}
		if (n == index) {
			ret = 0;
			break;
		}
		if (n > index || nr == PTY_HOLD_MAX) {
			pr_err("/dev/pts/%u is in use here (the next free pty is /dev/pts/%u): "
			       "the tree's pty cannot have its number again", index, n);
			ret = -EBUSY;
			break;
		}
		held[nr++] = fd;
		fd = -1;
	}
	while (nr)
		close(held[--nr]);
	if (!ret) {
		int unlock = 0;

		/* its slave fds are opened through it (the lock is set again at the end) */
		ret = ioctl(fd, TIOCSPTLCK, &unlock) ? -errno : 0;
	}
	if (ret) {
		if (fd >= 0)
			close(fd);
		return ret;
	}
	return fd;
}

static struct pty *pty_get(uint32_t index)
{
	size_t i;
	int fd;

	for (i = 0; i < nr_ptys; i++)
		if (ptys[i].index == index)
			return &ptys[i];
	if (index >= PTY_INDEX_MAX) {
		errno = EINVAL;
		return NULL;
	}
	if (grow_array(&ptys, &cap_ptys, nr_ptys, sizeof(*ptys))) {
		errno = ENOMEM;
		return NULL;
	}
	fd = pty_alloc(index);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	ptys[nr_ptys] = (struct pty){ .index = index, .master = fd };
	return &ptys[nr_ptys++];
}

/* A new description of @p's slave (@flags as open(2)'s), or -errno. */
static int pty_slave(const struct pty *p, int flags)
{
	int fd = ioctl(p->master, TIOCGPTPEER, flags | O_NOCTTY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int tty_ctty_fd(uint32_t index, const void *winsize, size_t len)
{
	struct pty *p;
	int fd;

	if (winsize && len != sizeof(struct winsize))
		return -EINVAL;
	p = pty_get(index);
	if (!p)
		return -errno;
	if (p->session)
		return -EEXIST;	/* a terminal belongs to one session */
	/* no session has it yet: no SIGWINCH for anyone */
	if (winsize && ioctl(p->master, TIOCSWINSZ, winsize))
		return -errno;
	fd = pty_slave(p, O_RDWR);
	if (fd >= 0)
		p->session = true;
	return fd;
}

void tty_restore_end(void)
{
	size_t i;

	for (i = 0; i < nr_ptys; i++)
		close(ptys[i].master);
	free(ptys);
	ptys = NULL;
	nr_ptys = cap_ptys = 0;
}

static int pty_entry_check(const FdEntry *f)
{
	const TtyEntry *t = f->tty;

	if (!t || t->index >= PTY_INDEX_MAX || t->termios.len != sizeof(struct termios2) ||
	    (!t->master && (!t->has_winsize || t->winsize.len != sizeof(struct winsize)))) {
		pr_err("fd %u: a pty entry that is not whole", f->fd);
		return -EINVAL;
	}
	return 0;
}

static int pty_open(const struct fd_open *o, const FdEntry *f, uint64_t key)
{
	struct pty *p;
	int fd, ret;

	(void)o;
	(void)key;
	ret = pty_entry_check(f);
	if (ret)
		return ret;
	p = pty_get(f->tty->index);
	if (!p)
		return -errno;
	if (!f->tty->master)
		return pty_slave(p, f->flags & (O_ACCMODE | O_NONBLOCK));
	if (p->master_taken) {
		pr_err("fd %u: a second master of /dev/pts/%u", f->fd, f->tty->index);
		return -EINVAL;
	}
	fd = fcntl(p->master, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	p->master_taken = true;
	return fd;
}

/* Once per description, every fd open, nothing running yet: this end's state. */
static int pty_ready(int fd, const FdEntry *f)
{
	const TtyEntry *t = f->tty;
	struct winsize ws;
	struct pty *p;
	int v;

	p = pty_get(t->index);
	if (!p)
		return -errno;
	if (ioctl(fd, TCSETS2, t->termios.data) || (t->excl && ioctl(fd, TIOCEXCL)))
		goto fail;
	if (t->master) {
		v = t->pkt;
		if (ioctl(fd, TIOCPKT, &v))
			goto fail;
		v = t->locked;
		return ioctl(fd, TIOCSPTLCK, &v) ? -errno : 0;
	}
	if (!p->session)	/* no process group to signal */
		return ioctl(fd, TIOCSWINSZ, t->winsize.data) ? -errno : 0;
	if (ioctl(fd, TIOCGWINSZ, &ws))
		goto fail;
	if (!memcmp(&ws, t->winsize.data, sizeof(ws)))
		return 0;
	/* set before the session had it: a change now would signal the tree */
	pr_err("/dev/pts/%u: its window size changed during the migration: not restored "
	       "without a SIGWINCH", t->index);
	return -EAGAIN;
fail:
	pr_err("/dev/pts/%u: cannot set its %s's state again: %m", t->index,
	       t->master ? "master" : "slave");
	return -errno;
}

const struct fd_restore_ops tty_restore_ops = {
	.type = FD_TYPE__FD_TTY,
	.name = "pty",
	.open = pty_open,
	.ready = pty_ready,
};
