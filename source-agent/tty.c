// SPDX-License-Identifier: MIT
/*
 * Terminals. A pty of the host's /dev/pts whose two ends are both in the
 * tree travels (a tmux or screen server and its panes, script(1), an
 * expect-style supervisor): the pair is made again at the destination with
 * the same index, each end's termios and exclusive mode, the window size,
 * packet mode and the slave's lock, and the sessions whose controlling
 * terminal it is (with their foreground group). Refused, by name: a pty
 * one of whose ends (or a process with it as controlling terminal) is
 * outside the tree, one of another devpts instance, data queued in it,
 * /dev/tty, /dev/console, virtual consoles and serial lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <asm/termbits.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/files.h"
#include "source-agent/preflight.h"
#include "source-agent/proc.h"

#define TTY_MAJOR		4	/* virtual consoles, serial lines */
#define TTYAUX_MAJOR		5	/* /dev/tty, /dev/console, /dev/ptmx */
#define PTMX_MINOR		2
#define PTS_MAJOR_FIRST		136	/* /dev/pts/N */
#define PTS_MAJOR_LAST		143

static bool pty_master_dev(dev_t rdev)
{
	return major(rdev) == TTYAUX_MAJOR && minor(rdev) == PTMX_MINOR;
}

static bool pty_slave_dev(dev_t rdev)
{
	return major(rdev) >= PTS_MAJOR_FIRST && major(rdev) <= PTS_MAJOR_LAST;
}

static uint32_t pts_index(dev_t rdev)
{
	return (major(rdev) - PTS_MAJOR_FIRST) * 256 + minor(rdev);
}

static bool tty_dev(dev_t rdev)
{
	unsigned int ma = major(rdev);

	return ma == TTY_MAJOR || (ma == TTYAUX_MAJOR && minor(rdev) <= 2) || pty_slave_dev(rdev);
}

static bool tty_path(const char *path)
{
	return !strncmp(path, "/dev/pts/", 9) || !strcmp(path, "/dev/ptmx") ||
	       !strncmp(path, "/dev/tty", 8) || !strcmp(path, "/dev/console");
}

/* Any terminal the tty row does not take (chrdev.c's check). */
int tty_fd_check(struct fd_dump *d)
{
	if (!tty_dev(d->st.st_rdev) && !tty_path(d->path))
		return 0;
	pr_err("pid %d: fd %d is a terminal (%s) that is not a pty of /dev/pts: ferry cannot "
	       "move /dev/tty, consoles or serial lines", d->pid, d->fd, d->path);
	return -EOPNOTSUPP;
}

static bool pty_match(const struct fd_dump *d)
{
	return S_ISCHR(d->st.st_mode) &&
	       (pty_master_dev(d->st.st_rdev) || pty_slave_dev(d->st.st_rdev));
}

/* The host's devpts (its st_dev): only its ptys travel. */
static int host_devpts(dev_t *dev)
{
	struct stat st;

	if (stat("/dev/pts", &st))
		return -errno;
	*dev = st.st_dev;
	return 0;
}

/* The stat of the slave of master @fd (our copy). */
static int master_peer_stat(int fd, struct stat *st)
{
	int peer, ret;

	/* the slave as a path only: nothing opened, nothing to unlock */
	peer = ioctl(fd, TIOCGPTPEER, O_PATH | O_NOCTTY | O_CLOEXEC);
	if (peer < 0)
		return -errno;
	ret = fstat(peer, st) ? -errno : 0;
	close(peer);
	return ret;
}

/* Which pty @fd (our copy of @d's fd) is an end of, in *@index; another devpts: refused. */
static int pty_index(const struct fd_dump *d, int fd, uint32_t *index)
{
	struct stat st = d->st;
	dev_t devpts = 0;
	int ret;

	ret = host_devpts(&devpts);
	if (!ret && pty_master_dev(d->st.st_rdev))
		ret = master_peer_stat(fd, &st);
	if (ret)
		return ret;
	if (st.st_dev != devpts || !pty_slave_dev(st.st_rdev)) {
		pr_err("pid %d: fd %d (%s) is a pty of another devpts instance than the host's "
		       "/dev/pts: ferry cannot move it", d->pid, d->fd, d->path);
		return -EOPNOTSUPP;
	}
	*index = pts_index(st.st_rdev);
	return 0;
}

static int tty_ref_add(struct file_ids *f, uint32_t index, const struct fd_dump *d, bool master,
		       pid_t sid)
{
	struct tty_ref *t;
	size_t i;

	for (i = 0; i < f->nr_ttys && f->ttys[i].index != index; i++)
		;
	if (i == f->nr_ttys) {
		if (grow_array(&f->ttys, &f->cap_ttys, f->nr_ttys, sizeof(*f->ttys)))
			return -ENOMEM;
		f->ttys[f->nr_ttys++] = (struct tty_ref){ .index = index, .pid = d->pid, .fd = d->fd };
	}
	t = &f->ttys[i];
	if (master) {
		t->master = true;
		t->sid = sid;
	}
	else
		t->slave = true;
	return 0;
}

/*
 * Output processing that depends on the column the line discipline
 * counts (its own state, not readable): tab expansion, ONOCR.
 */
static int pty_column_check(const struct fd_dump *d, const struct termios2 *t)
{
	if (!(t->c_oflag & OPOST) || (!(t->c_oflag & ONOCR) && (t->c_oflag & TABDLY) != XTABS))
		return 0;
	pr_err("pid %d: fd %d (%s): a pty whose output processing depends on the cursor "
	       "column (XTABS or ONOCR): the line discipline's column cannot be read, ferry "
	       "cannot move it", d->pid, d->fd, d->path);
	return -EOPNOTSUPP;
}

/*
 * Data in the pty: what this end would read (FIONREAD) or has not sent
 * (TIOCOUTQ), and a packet-mode status byte (POLLPRI on the master) cannot
 * be read without consuming it.
 */
static int pty_queue_check(const struct fd_dump *d, int fd, uint32_t index, bool master)
{
	struct pollfd p = { .fd = fd, .events = POLLPRI };
	int in = 0, out = 0;

	if (ioctl(fd, FIONREAD, &in) || ioctl(fd, TIOCOUTQ, &out))
		return -errno;
	if (master && poll(&p, 1, 0) < 0)
		return -errno;
	if (!in && !out && !(master && (p.revents & POLLPRI)))
		return 0;
	pr_err("pid %d: fd %d, the %s of /dev/pts/%u, has data queued (%d bytes to read, %d "
	       "to send%s): ferry cannot move a pty's queued data", d->pid, d->fd,
	       master ? "master" : "slave", index, in, out,
	       master && (p.revents & POLLPRI) ? ", a packet status" : "");
	return -EOPNOTSUPP;
}

static int pty_check_fd(struct fd_dump *d)
{
	struct termios2 t;
	uint32_t index;
	pid_t sid = 0;
	int fd, ret;

	fd = proc_take_fd(d->pid, d->fd);
	if (fd < 0)
		return fd;
	ret = pty_index(d, fd, &index);
	if (!ret)
		ret = pty_queue_check(d, fd, index, pty_master_dev(d->st.st_rdev));
	if (!ret)
		ret = ioctl(fd, TCGETS2, &t) ? -errno : 0;
	if (!ret)
		ret = pty_column_check(d, &t);
	/* its session (from the master: no need to be in it), -1: not one we can see */
	if (!ret && pty_master_dev(d->st.st_rdev) && ioctl(fd, TIOCGSID, &sid))
		sid = errno == ENOTTY ? 0 : -1;
	else if (!ret && pty_master_dev(d->st.st_rdev) && !sid)
		sid = -1;
	if (!ret)
		ret = tty_ref_add(d->ids, index, d, pty_master_dev(d->st.st_rdev), sid);
	close(fd);
	return ret;
}

struct pty_dump {
	TtyEntry te;
	struct termios2 t;
	struct winsize ws;
};

static int pty_dump(struct fd_dump *d)
{
	bool master = pty_master_dev(d->st.st_rdev);
	struct pty_dump *p;
	int fd, ret, v;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	d->priv = p;
	tty_entry__init(&p->te);
	fd = proc_take_fd(d->pid, d->fd);
	if (fd < 0)
		return fd;
	/* queued data: refused by pty_check_fd, run right before, frozen */
	ret = pty_index(d, fd, &p->te.index);
	if (ret)
		goto out;
	ret = -errno;
	if (ioctl(fd, TCGETS2, &p->t) || ioctl(fd, TIOCGEXCL, &v))
		goto out;
	p->te.master = master;
	p->te.excl = !!v;
	p->te.termios.data = (uint8_t *)&p->t;
	p->te.termios.len = sizeof(p->t);
	if (master) {
		if (ioctl(fd, TIOCGPKT, &v))
			goto out;
		p->te.has_pkt = 1;
		p->te.pkt = !!v;
		if (ioctl(fd, TIOCGPTLCK, &v))
			goto out;
		p->te.has_locked = 1;
		p->te.locked = !!v;
	} else {
		if (ioctl(fd, TIOCGWINSZ, &p->ws))
			goto out;
		p->te.has_winsize = 1;
		p->te.winsize.data = (uint8_t *)&p->ws;
		p->te.winsize.len = sizeof(p->ws);
	}
	ret = 0;
	d->e.type = FD_TYPE__FD_TTY;
	d->e.path = d->path;
	d->e.tty = &p->te;
out:
	close(fd);
	return ret;
}

static void pty_free(struct fd_dump *d)
{
	free(d->priv);
	d->priv = NULL;
}

const struct fd_dump_ops tty_dump_ops = {
	.type = FD_TYPE__FD_TTY,
	.name = "pty",
	.match = pty_match,
	.check = pty_check_fd,
	.dump = pty_dump,
	.free = pty_free,
};

static bool has_pty(const struct file_ids *f, uint32_t index)
{
	size_t i;

	for (i = 0; i < f->nr_ttys; i++)
		if (f->ttys[i].index == index)
			return true;
	return false;
}

static void ctty_name(uint32_t tty_nr, char *buf, size_t len)
{
	if (pty_slave_dev(tty_nr))
		snprintf(buf, len, "/dev/pts/%u", pts_index(tty_nr));
	else
		snprintf(buf, len, "device %u:%u", major(tty_nr), minor(tty_nr));
}

/*
 * The controlling terminal of @pid (of the tree, its stat @ps; @st: the
 * tree's, @nr of them): a pty of the tree, which the restore gives its
 * session leader (of the tree, not the root) right after setsid, so that
 * every process forked after has it too: its parent must have it too.
 */
static int ctty_check(const struct file_ids *f, size_t k, const struct proc_stat *st)
{
	const struct proc_stat *ps = &st[k], *leader = NULL, *parent = NULL;
	pid_t pid = f->pids[k];
	char name[64];
	size_t i;

	for (i = 0; i < f->nr_pids; i++) {
		if (f->pids[i] == ps->sid)
			leader = &st[i];
		if (f->pids[i] == ps->ppid)
			parent = &st[i];
	}
	if (leader && leader->tty_nr && leader->tty_nr != ps->tty_nr) {
		ctty_name(leader->tty_nr, name, sizeof(name));
		pr_err("pid %d: has not the controlling terminal of its session (%s): ferry "
		       "cannot move a process that left it", pid, name);
		return -EOPNOTSUPP;
	}
	if (!ps->tty_nr)
		return 0;
	ctty_name(ps->tty_nr, name, sizeof(name));
	if (!pty_slave_dev(ps->tty_nr) || !has_pty(f, pts_index(ps->tty_nr))) {
		pr_err("pid %d: its controlling terminal (%s) is not a pty whose both ends are in "
		       "the tree: ferry cannot move it (a service started from a shell keeps its "
		       "terminal: start it with setsid(1))", pid, name);
		return -EOPNOTSUPP;
	}
	if (!leader || !k || (pid != ps->sid && (!parent || parent->tty_nr != ps->tty_nr))) {
		pr_err("pid %d: its controlling terminal %s belongs to %s: ferry gives a "
		       "terminal back to the session leader only, to processes it forks after",
		       pid, name, !leader ? "a session led outside the tree" :
		       !k ? "the tree's root" : "a process its parent is not part of");
		return -EOPNOTSUPP;
	}
	if (pid != ps->sid)
		return 0;
	for (i = 0; i < f->nr_pids; i++)
		if (st[i].sid == ps->sid && f->pids[i] == ps->tpgid && st[i].pgid == ps->tpgid)
			return 0;
	pr_err("pid %d: the foreground group of its terminal %s (%d) is not a group of the "
	       "tree led by a process of it: ferry cannot make it again", pid, name, ps->tpgid);
	return -EOPNOTSUPP;
}

/* Whether @pid's master @fd (of an index of the tree's) is one of the host's devpts. */
static bool master_of_host(pid_t pid, int fd, dev_t devpts)
{
	struct stat st;
	int mine = proc_take_fd(pid, fd);
	bool ret;

	if (mine < 0)
		return true;	/* cannot tell: refused */
	ret = master_peer_stat(mine, &st) || st.st_dev == devpts;
	close(mine);
	return ret;
}

/* @pid (outside the tree) holds an end of one of the tree's ptys, or has one as its terminal. */
static int outside_check(const struct file_ids *f, pid_t pid, dev_t devpts)
{
	char path[64], info[512];
	struct proc_stat ps;
	struct stat st;
	uint64_t index;
	size_t nr, i;
	pid_t *fds;
	int ret = 0;

	if (proc_read_stat(pid, &ps))
		return 0;	/* gone meanwhile */
	/* the same number in another devpts instance is another terminal (another session) */
	if (pty_slave_dev(ps.tty_nr) && has_pty(f, pts_index(ps.tty_nr)) &&
	    file_ids_has_pid(f, ps.sid)) {
		pr_err("pid %d outside the tree has /dev/pts/%u, a pty of the tree, as its "
		       "controlling terminal: ferry cannot move one end of a terminal away from "
		       "the other", pid, pts_index(ps.tty_nr));
		return -EOPNOTSUPP;
	}
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	if (proc_read_dir_numbers(path, &fds, &nr))
		return 0;
	for (i = 0; i < nr && !ret; i++) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fds[i]);
		if (stat(path, &st) || !S_ISCHR(st.st_mode))
			continue;
		if (pty_slave_dev(st.st_rdev) && st.st_dev == devpts) {
			index = pts_index(st.st_rdev);
		} else if (pty_master_dev(st.st_rdev)) {
			snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fds[i]);
			if (read_small_file(path, info, sizeof(info)) < 0 ||
			    fdinfo_u64(info, "tty-index:", 10, &index) || !has_pty(f, index) ||
			    !master_of_host(pid, fds[i], devpts))
				continue;
		} else {
			continue;
		}
		if (!has_pty(f, index))
			continue;
		pr_err("pid %d outside the tree holds /dev/pts/%u (fd %d, its %s), a pty of the "
		       "tree: ferry cannot move one end of a terminal away from the other", pid,
		       (unsigned int)index, fds[i], pty_master_dev(st.st_rdev) ? "master" : "slave");
		ret = -EOPNOTSUPP;
	}
	free(fds);
	return ret;
}

int tty_check_tree(const struct file_ids *f)
{
	struct proc_stat *st;
	size_t nr = 0, i;
	pid_t *pids = NULL;
	dev_t devpts = 0;
	int ret = 0;

	for (i = 0; i < f->nr_ttys; i++) {
		const struct tty_ref *t = &f->ttys[i];

		if (t->master && t->slave && (!t->sid || file_ids_has_pid(f, t->sid)))
			continue;
		if (t->master && t->slave) {
			pr_err("pid %d: fd %d is an end of /dev/pts/%u, the controlling terminal of "
			       "a session led outside the tree: ferry cannot move it", t->pid,
			       t->fd, t->index);
			return -EOPNOTSUPP;
		}
		pr_err("pid %d: fd %d is an end of /dev/pts/%u whose %s: ferry moves a pty with "
		       "both ends in the tree only", t->pid, t->fd, t->index, t->master ?
		       "slave no process of the tree holds open" : "master is outside the tree");
		return -EOPNOTSUPP;
	}
	st = calloc(f->nr_pids + 1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	for (i = 0; i < f->nr_pids && !ret; i++)
		ret = proc_read_stat(f->pids[i], &st[i]);
	for (i = 0; i < f->nr_pids && !ret; i++)
		ret = ctty_check(f, i, st);
	free(st);
	if (ret || !f->nr_ttys)
		return ret;
	ret = host_devpts(&devpts);
	if (!ret)
		ret = proc_read_dir_numbers("/proc", &pids, &nr);
	for (i = 0; i < nr && !ret; i++)
		if (!file_ids_has_pid(f, pids[i]) && pids[i] != getpid())
			ret = outside_check(f, pids[i], devpts);
	free(pids);
	return ret;
}

/* The window size of /dev/pts/@index, read through an fd of it that a process of @pids holds. */
int tty_winsize(const pid_t *pids, size_t nr, uint32_t index, struct winsize *ws)
{
	char path[64];
	struct stat st;
	size_t i, k, n;
	pid_t *fds;
	int ret = -ENOENT;

	for (i = 0; i < nr && ret; i++) {
		snprintf(path, sizeof(path), "/proc/%d/fd", pids[i]);
		if (proc_read_dir_numbers(path, &fds, &n))
			continue;
		for (k = 0; k < n && ret; k++) {
			int fd;

			snprintf(path, sizeof(path), "/proc/%d/fd/%d", pids[i], fds[k]);
			if (stat(path, &st) || !S_ISCHR(st.st_mode) ||
			    !pty_slave_dev(st.st_rdev) || pts_index(st.st_rdev) != index)
				continue;
			fd = proc_take_fd(pids[i], fds[k]);
			if (fd < 0)
				continue;
			ret = ioctl(fd, TIOCGWINSZ, ws) ? -errno : 0;
			close(fd);
		}
		free(fds);
	}
	return ret;
}

/* /dev/pts/N's N + 1, if @tty_nr is one, else 0. */
uint32_t tty_ctty_index(uint32_t tty_nr)
{
	return pty_slave_dev(tty_nr) ? pts_index(tty_nr) + 1 : 0;
}
