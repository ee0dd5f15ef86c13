/* SPDX-License-Identifier: MIT */
/*
 * Platform facts the segment layer needs, all Linux specifics in one place:
 * attachment tokens and the OFD locks that attest liveness, the kernel
 * boot id, clocks, thread ids, membarrier(2) for the asymmetric read
 * flavor, NUMA topology and placement (real through libnuma, or simulated
 * with SHG_NUMA_SIM=N for tests on one-node hosts), and random bytes.
 *
 * Everything here is process-local; nothing touches the shared segment.
 * Cached answers are stored in relaxed atomics: every racing thread
 * computes the same value, so a benign race only repeats work.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifdef HAVE_LINUX_MEMBARRIER_H
#include <linux/membarrier.h>
#else
#define MEMBARRIER_CMD_QUERY 0
#define MEMBARRIER_CMD_GLOBAL_EXPEDITED (1 << 1)
#define MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED (1 << 2)
#endif

#include "internal.h"
#include "util.h"

/* -------------------------------------------------------------------------
 * Small file helpers.
 */

/* Read up to @len - 1 bytes of @path into @buf (NUL-terminated). */
static ssize_t read_small_file(const char *path, char *buf, size_t len)
{
	ssize_t n, got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((size_t)got < len - 1) {
		n = read(fd, buf + got, len - 1 - (size_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			n = -errno;
			close(fd);
			return n;
		}
		if (n == 0)
			break;
		got += n;
	}
	close(fd);
	buf[got] = '\0';
	return got;
}

/* -------------------------------------------------------------------------
 * Attachment tokens and kernel-attested liveness.
 *
 * A token names one attachment of one process to one segment: 64 random
 * bits, never 0 and never SHG_TOKEN_MIXED. It carries no pid, so nothing
 * about it depends on PID namespaces, /proc, clocks or time namespaces.
 * Whether its owner lives is answered by the kernel through an OFD lock
 * (fcntl F_OFD_SETLK) the owner holds on one byte of the segment file for
 * as long as it is attached: the kernel drops OFD locks when the last
 * descriptor of the open file description closes, i.e. at process death
 * and at exec (the descriptor is O_CLOEXEC), in every namespace, and locks
 * never survive a reboot. See registry.c for the protocol.
 */
uint64_t shg__new_token(void)
{
	uint64_t t;

	do
		shg__random_bytes((uint8_t *)&t, sizeof(t));
	while (t == 0 || t == SHG_TOKEN_MIXED);
	return t;
}

static int ofd_setlk(int fd, short type, uint64_t off, int cmd)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)off;
	fl.l_len = 1;
	while (fcntl(fd, cmd, &fl) < 0) {
		if (errno == EINTR)
			continue;
		return -errno;
	}
	return 0;
}

int shg__ofd_trylock(int fd, uint64_t off)
{
	int err = ofd_setlk(fd, F_WRLCK, off, F_OFD_SETLK);

	return err == -EACCES ? -EAGAIN : err;
}

int shg__ofd_unlock(int fd, uint64_t off)
{
	return ofd_setlk(fd, F_UNLCK, off, F_OFD_SETLK);
}

int shg__ofd_probe(int fd, uint64_t off)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)off;
	fl.l_len = 1;
	/* l_pid must be 0 for the OFD commands. */
	while (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
		if (errno == EINTR)
			continue;
		return -errno;
	}
	return fl.l_type != F_UNLCK;
}

/* PID namespace of this process, for display (0 if unknown). */
uint64_t shg__pidns_id(void)
{
	struct stat st;

	if (stat("/proc/self/ns/pid", &st) != 0)
		return 0;
	return (uint64_t)st.st_ino;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int shg__boot_id(uint8_t out[16])
{
	char buf[128];
	ssize_t n;
	int i = 0, hi = -1, v;
	const char *p;

	memset(out, 0, 16);
	n = read_small_file("/proc/sys/kernel/random/boot_id", buf,
			    sizeof(buf));
	if (n < 0)
		return (int)n;
	for (p = buf; *p && *p != '\n' && i < 16; p++) {
		if (*p == '-')
			continue;
		v = hexval((unsigned char)*p);
		if (v < 0)
			goto bad;
		if (hi < 0) {
			hi = v;
		} else {
			out[i++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	if (i == 16)
		return 0;
bad:
	memset(out, 0, 16);
	return -EIO;
}

/* -------------------------------------------------------------------------
 * Clocks and ids.
 */
static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t shg__now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t shg__realtime_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

pid_t shg__gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* -------------------------------------------------------------------------
 * membarrier(2). The kernel query is cached; SHG_NO_MEMBARRIER=1 is read
 * on every call so tests can switch the fence flavor on and off.
 */
static long sys_membarrier(int cmd, unsigned flags)
{
#ifdef __NR_membarrier
	return syscall(__NR_membarrier, cmd, flags, 0);
#else
	errno = ENOSYS;
	return -1;
#endif
}

static _Atomic int mb_query = -1; /* -1 unknown, 0 no, 1 yes */

static bool env_no_membarrier(void)
{
	const char *e = getenv("SHG_NO_MEMBARRIER");

	return e && e[0] && strcmp(e, "0") != 0;
}

bool shg__membarrier_supported(void)
{
	const long need = MEMBARRIER_CMD_GLOBAL_EXPEDITED |
			  MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED;
	int v;
	long r;

	if (env_no_membarrier())
		return false;
	v = atomic_load_explicit(&mb_query, memory_order_relaxed);
	if (v < 0) {
		r = sys_membarrier(MEMBARRIER_CMD_QUERY, 0);
		v = r >= 0 && (r & need) == need;
		atomic_store_explicit(&mb_query, v, memory_order_relaxed);
	}
	return v;
}

/*
 * Registration is recorded in the process's mm. Whether a forked child
 * inherits it is not something to rely on, so a process re-registers when
 * its pid changed (registering twice is harmless).
 */
static _Atomic pid_t mb_registered_pid;

int shg__membarrier_register(void)
{
	pid_t pid = getpid();

	if (atomic_load_explicit(&mb_registered_pid, memory_order_acquire) ==
	    pid)
		return 0;
	if (!shg__membarrier_supported())
		return -ENOTSUP;
	if (sys_membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0) < 0)
		return -errno;
	atomic_store_explicit(&mb_registered_pid, pid, memory_order_release);
	return 0;
}

int shg__membarrier(void)
{
	if (sys_membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0) < 0)
		return -errno;
	return 0;
}

/* -------------------------------------------------------------------------
 * NUMA. SHG_NUMA_SIM=N (1..16) pretends N nodes: cpu -> node = cpu mod N,
 * and placement is skipped. The environment is read on each call (cheap,
 * rare paths); the libnuma answer is cached.
 */
static unsigned sim_nodes(void)
{
	return shg__numa_sim_nodes(SHG_MAX_NODES);
}

static _Atomic int real_nodes; /* 0 = not computed yet */

static unsigned numa_real_nodes(void)
{
	int n = atomic_load_explicit(&real_nodes, memory_order_relaxed);

	if (n == 0) {
		n = 1;
		if (numa_available() >= 0) {
			n = numa_max_node() + 1;
			if (n < 1)
				n = 1;
			if (n > (int)SHG_MAX_NODES)
				n = SHG_MAX_NODES;
		}
		atomic_store_explicit(&real_nodes, n, memory_order_relaxed);
	}
	return (unsigned)n;
}

unsigned shg__numa_nodes(void)
{
	unsigned n = sim_nodes();

	return n ? n : numa_real_nodes();
}

bool shg__numa_simulated(void)
{
	return sim_nodes() != 0;
}

unsigned shg__numa_node_self(void)
{
	unsigned n = sim_nodes();
	int cpu = sched_getcpu();
	int node;

	if (cpu < 0)
		cpu = 0;
	if (n)
		return (unsigned)cpu % n;
	if (numa_real_nodes() == 1)
		return 0;
	node = numa_node_of_cpu(cpu);
	if (node < 0 || node >= (int)SHG_MAX_NODES)
		return 0;
	return (unsigned)node;
}

int shg__numa_place(void *addr, size_t len, int policy, int node)
{
	unsigned nodes = shg__numa_nodes();
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t a = (uintptr_t)addr, start, end;
	unsigned long mask = 0;
	int mode;

	if (page <= 0)
		page = 4096;
	if (len == 0)
		return 0;
	start = a & ~((uintptr_t)page - 1);
	end = (a + len + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
	if (shg__numa_simulated() || nodes <= 1)
		return 0;
	switch (policy) {
	case SHG_NUMA_LOCAL:
		if (node < 0)
			node = (int)shg__numa_node_self();
		if (node >= (int)nodes)
			return -EINVAL;
		mode = MPOL_PREFERRED;
		mask = 1ul << node;
		break;
	case SHG_NUMA_INTERLEAVE:
		mode = MPOL_INTERLEAVE;
		mask = (nodes >= 8 * sizeof(mask)) ? ~0ul : (1ul << nodes) - 1;
		break;
	case SHG_NUMA_BIND:
		if (node < 0 || node >= (int)nodes)
			return -EINVAL;
		mode = MPOL_BIND;
		mask = 1ul << node;
		break;
	default:
		return -EINVAL;
	}
	/* maxnode counts bits; the kernel ignores the last one. */
	if (mbind((void *)start, end - start, mode, &mask, nodes + 1, 0) != 0) {
		if (errno == EPERM || errno == ENOSYS)
			return 0; /* placement is advice, not a must */
		return -errno;
	}
	return 0;
}

/* -------------------------------------------------------------------------
 * Random bytes: getrandom, then /dev/urandom, then a weak mix.
 */
static size_t urandom_fill(uint8_t *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;
	int fd;

	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	while (got < len) {
		n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	return got;
}

void shg__random_bytes(uint8_t *buf, size_t len)
{
	uint64_t x;
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = getrandom(buf + got, len - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got < len)
		got += urandom_fill(buf + got, len - got);
	if (got >= len)
		return;
	/* Last resort (no entropy source): time, pid and address mixed by
	 * splitmix64. Only uniqueness matters for the uses here. */
	x = shg__now_ns() ^ shg__realtime_ns() ^ ((uint64_t)getpid() << 32) ^
	    (uint64_t)(uintptr_t)buf;
	for (; got < len; got++) {
		uint64_t z;

		x += 0x9e3779b97f4a7c15ull;
		z = x;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		buf[got] = (uint8_t)(z ^ (z >> 31));
	}
}

/* -------------------------------------------------------------------------
 * Huge pages (SHG_OPEN_HUGE, shg_seg_huge): which file system backs a
 * segment's file and whether it gives huge pages, the collapse call, and
 * the bytes of a mapping that huge pages map (/proc/self/smaps).
 *
 * tmpfs decides per mount (mount option huge=, default never; shown in
 * /proc/self/mountinfo only when not never), overridden by the host-wide
 * /sys/kernel/mm/transparent_hugepage/shmem_enabled when that reads
 * [deny] (no huge pages anywhere) or [force] (huge pages everywhere). POSIX
 * shm names live on the /dev/shm mount, so the same rule applies to them.
 * A mount with huge=always or huge=within_size allocates huge pages when
 * posix_fallocate backs the heap; huge=never and huge=advise do not (the
 * heap is backed by fallocate, outside any mapping, so MADV_HUGEPAGE never
 * sees those allocations), but MADV_COLLAPSE (Linux 6.1) turns backed
 * ranges into huge pages on any tmpfs mount unless shmem_enabled is deny.
 */
#define HUGETLBFS_MAGIC_ 0x958458f6
#define TMPFS_MAGIC_ 0x01021994
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#define THP_DIR "/sys/kernel/mm/transparent_hugepage/"

/* The bracketed word of a sysfs choice file ("always [never]") into @out. */
static bool sysfs_choice(const char *path, char *out, size_t len)
{
	char buf[256], *a, *b;

	if (read_small_file(path, buf, sizeof(buf)) <= 0)
		return false;
	a = strchr(buf, '[');
	b = a ? strchr(a, ']') : NULL;
	if (!b || (size_t)(b - a - 1) >= len)
		return false;
	memcpy(out, a + 1, (size_t)(b - a - 1));
	out[b - a - 1] = '\0';
	return true;
}

static uint64_t thp_pmd_size(void)
{
	char buf[32];
	unsigned long long v;

	if (read_small_file(THP_DIR "hpage_pmd_size", buf, sizeof(buf)) > 0 &&
	    sscanf(buf, "%llu", &v) == 1 && v && !(v & (v - 1)))
		return v;
	return 2u << 20;
}

/* The huge= option of the mount with id @mnt_id, "never" when absent. */
static int tmpfs_huge_option(uint64_t mnt_id, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, *sep, *opt, *end;
	size_t cap = 0;
	unsigned long long id;
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		if (sscanf(line, "%llu", &id) != 1 || id != mnt_id)
			continue;
		/* "... - fstype source super_options\n" */
		sep = strstr(line, " - ");
		opt = sep ? strstr(sep, ",huge=") : NULL;
		if (!opt && sep)
			opt = strstr(sep, " huge=");
		snprintf(out, len, "never");
		if (opt) {
			opt += 6;
			end = opt + strcspn(opt, ", \n");
			snprintf(out, len, "%.*s", (int)(end - opt), opt);
		}
		err = 0;
		break;
	}
	free(line);
	fclose(f);
	return err;
}

static bool collapse_supported(void)
{
	/* The advice is validated before the (empty) range is looked at:
	 * EINVAL on kernels without MADV_COLLAPSE, 0 on the others. */
	void *p = (void *)(uintptr_t)sysconf(_SC_PAGESIZE);

	return madvise(p, 0, MADV_COLLAPSE) == 0;
}

static void huge_tmpfs(int fd, struct shg__huge *h)
{
	char shm[16], opt[12];
	struct statx stx;

	if (!sysfs_choice(THP_DIR "shmem_enabled", shm, sizeof(shm))) {
		snprintf(h->policy, sizeof(h->policy), "no THP in kernel");
		return;
	}
	h->page_size = thp_pmd_size();
	if (!strcmp(shm, "deny") || !strcmp(shm, "force")) {
		snprintf(h->policy, sizeof(h->policy), "shmem_enabled=%s", shm);
		h->kind = shm[0] == 'f' ? SHG_HUGE_TMPFS : SHG_HUGE_NONE;
		return;
	}
	if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) < 0 ||
	    !(stx.stx_mask & STATX_MNT_ID) ||
	    tmpfs_huge_option(stx.stx_mnt_id, opt, sizeof(opt)) < 0)
		snprintf(opt, sizeof(opt), "unknown");
	snprintf(h->policy, sizeof(h->policy), "huge=%s", opt);
	if (!strcmp(opt, "always") || !strcmp(opt, "within_size"))
		h->kind = SHG_HUGE_TMPFS;
	else if (collapse_supported())
		h->kind = SHG_HUGE_COLLAPSE;
	else
		snprintf(h->policy, sizeof(h->policy), "huge=%s, no collapse",
			 opt);
}

int shg__huge_probe(int fd, bool thp, struct shg__huge *h)
{
	struct statfs sf;

	memset(h, 0, sizeof(*h));
	if (fstatfs(fd, &sf) < 0)
		return -errno;
	if ((unsigned long)sf.f_type == HUGETLBFS_MAGIC_) {
		h->kind = SHG_HUGE_HUGETLBFS;
		h->page_size = (uint64_t)sf.f_bsize;
		snprintf(h->policy, sizeof(h->policy), "hugetlbfs");
	} else if ((unsigned long)sf.f_type != TMPFS_MAGIC_) {
		snprintf(h->policy, sizeof(h->policy), "not tmpfs (0x%lx)",
			 (unsigned long)sf.f_type);
	} else if (thp) {
		huge_tmpfs(fd, h);
	} else {
		snprintf(h->policy, sizeof(h->policy), "tmpfs (not probed)");
	}
	return 0;
}

int shg__huge_collapse(void *addr, size_t len)
{
	return madvise(addr, len, MADV_COLLAPSE) < 0 ? -errno : 0;
}

/* "Key:   123 kB" of an smaps line, in bytes, if @key is one we sum. */
static bool smaps_huge_line(const char *line, uint64_t *bytes)
{
	static const char *const keys[] = { "AnonHugePages:", "ShmemPmdMapped:",
					    "FilePmdMapped:", "Shared_Hugetlb:",
					    "Private_Hugetlb:" };
	unsigned long long kb;
	size_t i, n;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		n = strlen(keys[i]);
		if (!strncmp(line, keys[i], n) &&
		    sscanf(line + n, "%llu", &kb) == 1) {
			*bytes = (uint64_t)kb << 10;
			return true;
		}
	}
	return false;
}

int shg__huge_mapped(const void *base, uint64_t len, uint64_t *out)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	uintptr_t lo = (uintptr_t)base, hi = lo + len;
	unsigned long long a, b;
	char *line = NULL;
	size_t cap = 0;
	uint64_t v, sum = 0;
	bool in = false;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		/* A mapping's header: "start-end perms offset dev inode". */
		if (sscanf(line, "%llx-%llx ", &a, &b) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = a >= lo && b <= hi;
			continue;
		}
		if (in && smaps_huge_line(line, &v))
			sum += v;
	}
	free(line);
	fclose(f);
	*out = sum;
	return 0;
}
