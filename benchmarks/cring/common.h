/*
 * common.h: what the C ring yardsticks of benchmarks/cring/ share: the options, the two pinned
 * threads and their loops, eventfd notifications with ringtest-style exit emulation, the
 * timing and the one output line. Each ring file (split_ring.c, inorder_ring.c,
 * packed_ring.c) defines RING_NAME, includes this header and then defines the ring hooks
 * declared below; everything is one translation unit, so gcc -O2 inlines the hooks.
 *
 * The run: a guest (driver) thread adds buffers, at most `queue` outstanding, with a kick
 * check every `batch` adds (and after the last add), and reaps used buffers between adds, one
 * per add as ringtest's run_guest (with -l: rounds of up to `batch` adds, one kick check, then
 * every used buffer, as vbench's protocol and Linux's virtio-net); a
 * host (device) thread uses available buffers, with a flush and call check every `batch`
 * completions and when it runs empty. Polling mode (the
 * default) spins with a pause instruction and never notifies; sleep mode (-s) re-enables
 * notifications, re-checks the ring and blocks on an eventfd, with the exit emulation (-x
 * cycles before and after every notification sent, 500 by default as in ringtest).
 *
 * Polling, neither side checks whether to notify, as ringtest's run_guest and run_host (`if
 * (do_sleep) kick_available()`, `call_used()`). -k makes both check anyway, as Linux does: the
 * guest's virtqueue_kick_prepare after every batch and the host's vhost_signal after it has
 * published used buffers each fence and read the peer's event index, not knowing that the
 * peer polls. vbench's protocol makes both checks in both modes, so -k is its like for like.
 * A call check with nothing published since the last one is skipped (vhost signals only after
 * adding used buffers): it could not ask for a call.
 *
 * Every buffer carries a token, the buffer's sequence number, which the guest writes and the
 * host checks against the count it has used: a lost, duplicated, reordered or corrupted buffer
 * aborts the run (exit 3). The guest checks every used entry it reads (id, length).
 *
 * Output, one line of key=value pairs: ring, buffers, queue, batch, mode, seconds,
 * buffers_per_s (completed buffers per second of wall time, both threads running), kicks and
 * calls. Usage errors exit 2 with one line on stderr.
 *
 * Options: -n buffers (10000000), -q queue (256), -b batch (32), -s (sleep), -x exit_cycles
 * (500; also the entry cycles), -g guest_cpu (0), -h host_cpu (1); a negative CPU: unpinned;
 * -c k spoils buffer k's token (counting from 1), to show that the check aborts the run;
 * -k the kick and call checks when polling too (above); -l the guest's loop as vbench's
 * protocol and Linux's virtio-net make it (run_guest_rounds), not ringtest's.
 */
#ifndef CRING_COMMON_H
#define CRING_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#ifndef RING_NAME
#error "define RING_NAME before including common.h"
#endif

/* The orderings the protocols need on x86-64 (TSO): acquire/release are compiler barriers
 * around plain accesses; only "publish, then check the peer" needs a full fence. */
#define load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define full_fence() __atomic_thread_fence(__ATOMIC_SEQ_CST)

static unsigned num = 256, batch = 32;
static unsigned long long nbufs = 10000000ULL;
static int do_sleep;
static int check_when_polling; /* -k */
static int linux_rounds; /* -l */
static unsigned long long exit_cycles = 500, entry_cycles = 500;
static unsigned long long corrupt_at; /* -c: the buffer whose token is spoiled (a test) */
static int kickfd, callfd;
static uint64_t *tokens; /* the buffers: one 8-byte payload per descriptor or buffer id */

/* On a struct type: its variables start and end on cache-line boundaries, so each side's
 * private state has lines of its own (no false sharing with the other side's state nor with
 * the read-mostly settings both sides read). */
#define CACHE_ALIGNED __attribute__((aligned(64)))

/* Counts kept by the common loops (each side writes only its own). */
static struct CACHE_ALIGNED {
	unsigned long long kicks, started, completed;
} guest_count;
static struct CACHE_ALIGNED {
	unsigned long long calls, done;
} host_count;

/* ---- the ring hooks each ring file defines ---- */
/* NULL if `num` and `batch` suit the ring, else what is wrong (for the usage error). */
static const char *ring_check_args(void);
static void ring_setup(void); /* allocate and initialize the ring for `num` entries */
/* guest */
static int add_buf(unsigned long long token); /* 0: added and published, -1: no room */
static int need_kick(void);        /* kick check over the adds since the last one */
static unsigned get_used(void);    /* reap what is used (checked): how many buffers, 0: none */
static int used_pending(void);     /* polling: is there something to reap? */
static int enable_call(void);      /* re-enable calls, fence, re-check: 1 = nothing, sleep */
static void disable_call(void);    /* after a wake-up */
/* host */
static int use_buf(void);          /* use one available buffer (token checked): 1, or 0: none */
static void flush_used(void);      /* publish what was used and not yet published */
static int need_call(void);        /* call check over what was published since the last one */
static int avail_pending(void);    /* polling: is a buffer available? */
static int enable_kick(void);      /* re-enable kicks, fence, re-check: 1 = nothing, sleep */
static void disable_kick(void);    /* after a wake-up */

static void die(const char *what)
{
	fprintf(stderr, RING_NAME ": error: %s\n", what);
	exit(3);
}

/* The host's check of a buffer's payload: the token of the next buffer in sequence. */
static inline void check_token(const void *addr, uint32_t len)
{
	if (len != sizeof(uint64_t) || *(const uint64_t *)addr != host_count.done + 1)
		die("lost, duplicated or corrupted buffer");
}

static void busy_cycles(unsigned long long cycles)
{
	unsigned long long end = __rdtsc() + cycles;
	while (__rdtsc() < end)
		_mm_pause();
}

/* A notification: exit emulation, the eventfd write, entry emulation (ringtest's kick/call). */
static void notify(int fd)
{
	uint64_t one = 1;
	busy_cycles(exit_cycles);
	if (write(fd, &one, sizeof one) != sizeof one)
		die("eventfd write failed");
	busy_cycles(entry_cycles);
}

static void wait_fd(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;
	if (poll(&p, 1, 10000) <= 0)
		die("no notification for 10 s: the run is wedged");
	if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN)
		die("eventfd read failed");
}

/* A side with nothing to do waits for its peer: sleeping, it re-enables notifications with
 * the re-check (`enable` answers 1 when nothing came meanwhile), blocks on its eventfd and
 * disables them again; polling, it spins on `pending` with a pause. Always inlined, so each
 * caller's hooks are direct calls. */
static inline __attribute__((always_inline)) void wait_for_peer(int (*enable)(void),
								 void (*disable)(void),
								 int (*pending)(void), int fd)
{
	if (do_sleep) {
		if (enable())
			wait_fd(fd);
		disable();
	} else {
		while (!pending())
			_mm_pause();
	}
}

static void pin(int cpu)
{
	cpu_set_t set;
	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof set, &set))
		die("cannot pin a thread (use -g/-h with allowed CPUs)");
}

static void kick_check(void)
{
	if ((do_sleep || check_when_polling) && need_kick()) {
		guest_count.kicks++;
		notify(kickfd);
	}
}

/* Room for another buffer: not all started, fewer than `queue` outstanding. */
static inline int guest_has_room(void)
{
	return guest_count.started < nbufs && guest_count.started - guest_count.completed < num;
}

/* Add the next buffer (its token the sequence number): 0 added, -1 no room in the ring. */
static int guest_add_next(void)
{
	unsigned long long token = guest_count.started + 1;
	if (token == corrupt_at)
		token = ~token; /* -c: the host must abort on this one */
	if (add_buf(token))
		return -1;
	guest_count.started++;
	return 0;
}

/* Nothing to add and nothing used: wait for a call, or spin until something is used. */
static void guest_wait_for_used(void)
{
	wait_for_peer(enable_call, disable_call, used_pending, callfd);
}

/* ringtest's run_guest loop: one add and one get_used alternating, a kick check every `batch`
 * adds. */
static void *run_guest(void *arg)
{
	unsigned tokick = batch;
	pin(*(int *)arg);
	for (;;) {
		for (;;) {
			int r = -1;
			unsigned n;
			if (guest_has_room()) {
				r = guest_add_next();
				if (!r && !--tokick) {
					tokick = batch;
					kick_check();
				}
			}
			n = get_used();
			guest_count.completed += n;
			if (!n && r)
				break;
		}
		/* every buffer started: the last adds get their kick check now (a full ring
		 * needs none: its `queue` >= `batch` adds since the host slept crossed one) */
		if (tokick != batch && guest_count.started == nbufs) {
			tokick = batch;
			kick_check();
		}
		if (guest_count.completed == nbufs)
			break;
		guest_wait_for_used();
	}
	return NULL;
}

/* -l: the guest's round as vbench's protocol makes it (protocol.submit_batch, then
 * protocol.reap_round) and as Linux's virtio-net transmit path does (start_xmit frees every
 * used buffer first, free_old_xmit_skbs calling virtqueue_get_buf until it returns NULL, and
 * kicks once at the end of a burst): up to `batch` adds while there is room, one kick check
 * after them, then every used buffer reaped. */
static void *run_guest_rounds(void *arg)
{
	pin(*(int *)arg);
	for (;;) {
		unsigned added = 0, reaped = 0, n;
		while (added < batch && guest_has_room() && !guest_add_next())
			added++;
		if (added)
			kick_check();
		while ((n = get_used())) {
			guest_count.completed += n;
			reaped += n;
		}
		if (guest_count.completed == nbufs)
			break;
		if (!added && !reaped)
			guest_wait_for_used(); /* the ring full (or every buffer started), none used */
	}
	return NULL;
}

static void call_check(void)
{
	if ((do_sleep || check_when_polling) && need_call()) {
		host_count.calls++;
		notify(callfd);
	}
}

static void *run_host(void *arg)
{
	unsigned tocall = batch;
	pin(*(int *)arg);
	for (;;) {
		while (use_buf()) {
			host_count.done++;
			if (!--tocall) {
				tocall = batch;
				flush_used();
				call_check();
			}
		}
		/* ran empty: publish and signal what is left, like a device that goes idle */
		flush_used();
		call_check();
		if (host_count.done == nbufs)
			break;
		wait_for_peer(enable_kick, disable_kick, avail_pending, kickfd);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int opt, gcpu = 0, hcpu = 1;
	pthread_t g, h;
	struct timespec t0, t1;
	const char *bad;
	double secs;

	while ((opt = getopt(argc, argv, "n:q:b:sx:g:h:c:kl")) != -1) {
		switch (opt) {
		case 'n': nbufs = strtoull(optarg, NULL, 0); break;
		case 'q': num = strtoul(optarg, NULL, 0); break;
		case 'b': batch = strtoul(optarg, NULL, 0); break;
		case 's': do_sleep = 1; break;
		case 'k': check_when_polling = 1; break;
		case 'l': linux_rounds = 1; break;
		case 'x': exit_cycles = entry_cycles = strtoull(optarg, NULL, 0); break;
		case 'g': gcpu = atoi(optarg); break;
		case 'h': hcpu = atoi(optarg); break;
		case 'c': corrupt_at = strtoull(optarg, NULL, 0); break;
		default:
			fprintf(stderr, "usage: %s [-n bufs] [-q queue] [-b batch] [-s] [-x cycles] "
					"[-g cpu] [-h cpu] [-c buffer] [-k] [-l]\n", argv[0]);
			return 2;
		}
	}
	bad = ring_check_args();
	if (!bad && (!batch || batch > num))
		bad = "batch must be 0 < batch <= queue";
	if (!bad && !nbufs)
		bad = "buffers must be > 0";
	if (bad) {
		fprintf(stderr, RING_NAME ": error: %s (queue %u, batch %u)\n", bad, num, batch);
		return 2;
	}
	ring_setup();
	kickfd = eventfd(0, EFD_NONBLOCK);
	callfd = eventfd(0, EFD_NONBLOCK);
	if (kickfd < 0 || callfd < 0)
		die("cannot set up eventfds");

	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_create(&h, NULL, run_host, &hcpu);
	pthread_create(&g, NULL, linux_rounds ? run_guest_rounds : run_guest, &gcpu);
	pthread_join(g, NULL);
	pthread_join(h, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
	if (guest_count.completed != nbufs || host_count.done != nbufs)
		die("completion count mismatch");
	printf("ring=%s buffers=%llu queue=%u batch=%u mode=%s seconds=%.6f buffers_per_s=%.1f "
	       "kicks=%llu calls=%llu\n",
	       RING_NAME, nbufs, num, batch, do_sleep ? "sleep" : "poll", secs, nbufs / secs,
	       guest_count.kicks, host_count.calls);
	return 0;
}

#endif /* CRING_COMMON_H */
