/*
 * split_ring.c: a plain C split virtqueue run the way Linux tools/virtio/ringtest runs one,
 * as the yardstick for vbench's native engine (benchmarks/native_bench.py builds and runs it).
 *
 * The ring is the real one: the structures, vring_init/vring_size layout and the event-index
 * test (vring_need_event, used_event, avail_event) come from <linux/virtio_ring.h>. A guest
 * (driver) thread adds buffers, one avail.idx publish per add, a kick check every `batch`
 * adds, at most `queue` in flight, and reaps used entries; a host (device) thread pops avail
 * entries and publishes used ones, with a call check every `batch` completions. Each side is
 * pinned to its own CPU. Polling mode (default) spins with a pause instruction and never
 * notifies; sleep mode (-s) re-enables notifications, re-checks, and blocks on an eventfd, with
 * the exit emulation (-x cycles, 500 + 500 by default as in ringtest) around every
 * notification sent.
 *
 * Each buffer carries a token that the guest writes and the host checks (the same "every
 * buffer verified" rule as vbench's native engine), so a lost or corrupted buffer aborts.
 *
 * Output, one line: key=value pairs, among them buffers_per_s (completed buffers per second of
 * wall time, both threads running), kicks and calls.
 *
 * Build: gcc -O2 -pthread -o split_ring split_ring.c
 * Run:   ./split_ring [-n buffers] [-q queue] [-b batch] [-s] [-x exit_cycles] [-g cpu] [-h cpu]
 */
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

/* The orderings the protocol needs on x86-64 (TSO): acquire/release are compiler barriers
 * around plain accesses; only "publish, then check the peer" needs a full fence. */
#define load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define full_fence() __atomic_thread_fence(__ATOMIC_SEQ_CST)

static struct vring ring;
static unsigned num = 256, batch = 32;
static unsigned long long nbufs = 10000000ULL;
static int do_sleep;
static unsigned long long exit_cycles = 500, entry_cycles = 500;
static int kickfd, callfd;
static uint64_t *tokens; /* the buffers: one 8-byte payload per descriptor */

/* guest state (only the guest thread touches it) */
static struct {
	uint16_t avail_idx, last_used_idx, kicked_avail_idx;
	unsigned free_head, num_free;
	unsigned long long kicks, started, completed;
} guest;

/* host state */
static struct {
	uint16_t used_idx, called_used_idx;
	unsigned long long calls, done;
} host;

static void die(const char *what)
{
	fprintf(stderr, "split_ring: error: %s\n", what);
	exit(3);
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

static void pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (cpu >= 0 && pthread_setaffinity_np(pthread_self(), sizeof set, &set))
		die("cannot pin a thread (use -g/-h with allowed CPUs)");
}

/* ---- guest (driver) ---- */
static int add_buf(unsigned long long token)
{
	unsigned head;
	if (!guest.num_free)
		return -1;
	head = guest.free_head;
	guest.free_head = ring.desc[head].next;
	guest.num_free--;
	tokens[head] = token;
	ring.desc[head].addr = (uint64_t)(uintptr_t)&tokens[head];
	ring.desc[head].len = sizeof(uint64_t);
	ring.desc[head].flags = VRING_DESC_F_WRITE;
	ring.avail->ring[guest.avail_idx & (num - 1)] = head;
	/* release: the descriptor and the avail entry are visible before the index that covers
	 * them (pairs with the host's acquire load of avail->idx) */
	store_release(&ring.avail->idx, ++guest.avail_idx);
	return 0;
}

static void kick_available(void)
{
	uint16_t old = guest.kicked_avail_idx, new = guest.avail_idx;
	/* full fence: avail->idx is published before avail_event is read (pairs with the host's
	 * fence between writing avail_event and re-reading avail->idx) */
	full_fence();
	guest.kicked_avail_idx = new;
	if (vring_need_event(load_acquire(&vring_avail_event(&ring)), new, old)) {
		guest.kicks++;
		notify(kickfd);
	}
}

static int get_buf(void)
{
	unsigned head, idx;
	if (guest.last_used_idx == load_acquire(&ring.used->idx))
		return 0; /* the acquire pairs with the host's release of used->idx */
	idx = guest.last_used_idx & (num - 1);
	head = ring.used->ring[idx].id;
	if (head >= num || ring.used->ring[idx].len != sizeof(uint64_t))
		die("corrupt used entry");
	ring.desc[head].next = guest.free_head;
	guest.free_head = head;
	guest.num_free++;
	guest.last_used_idx++;
	return 1;
}

static int enable_call(void)
{
	/* used_event = where we are; fence; re-check (the lost-wakeup check) */
	store_release(&vring_used_event(&ring), guest.last_used_idx);
	full_fence();
	return load_acquire(&ring.used->idx) == guest.last_used_idx; /* 1: nothing new, sleep */
}

static void *run_guest(void *arg)
{
	int cpu = *(int *)arg;
	unsigned tokick = batch;
	pin(cpu);
	for (;;) {
		int r;
		do {
			if (guest.started < nbufs && guest.started - guest.completed < num) {
				r = add_buf(guest.started + 1);
				if (!r) {
					guest.started++;
					if (!--tokick) {
						tokick = batch;
						if (do_sleep)
							kick_available();
					}
				}
			} else {
				r = -1;
			}
			if (get_buf())
				guest.completed++;
			else if (r)
				break;
		} while (1);
		if (guest.completed == nbufs)
			break;
		if (do_sleep) {
			if (enable_call())
				wait_fd(callfd);
		} else {
			while (guest.last_used_idx == load_acquire(&ring.used->idx))
				_mm_pause();
		}
	}
	return NULL;
}

/* ---- host (device) ---- */
static int use_buf(void)
{
	unsigned idx, head;
	if (host.used_idx == load_acquire(&ring.avail->idx))
		return 0; /* the acquire pairs with the guest's release of avail->idx */
	idx = host.used_idx & (num - 1);
	head = ring.avail->ring[idx];
	if (head >= num || ring.desc[head].len != sizeof(uint64_t) ||
	    *(uint64_t *)(uintptr_t)ring.desc[head].addr != host.done + 1)
		die("lost, duplicated or corrupted buffer");
	ring.used->ring[idx].id = head;
	ring.used->ring[idx].len = sizeof(uint64_t);
	/* release: the used element is visible before the index (pairs with get_buf's acquire) */
	store_release(&ring.used->idx, ++host.used_idx);
	return 1;
}

static void call_used(void)
{
	uint16_t old = host.called_used_idx, new = host.used_idx;
	full_fence(); /* used->idx published before used_event is read */
	host.called_used_idx = new;
	if (vring_need_event(load_acquire(&vring_used_event(&ring)), new, old)) {
		host.calls++;
		notify(callfd);
	}
}

static int enable_kick(void)
{
	store_release(&vring_avail_event(&ring), host.used_idx);
	full_fence();
	return load_acquire(&ring.avail->idx) == host.used_idx; /* 1: nothing new, sleep */
}

static void *run_host(void *arg)
{
	int cpu = *(int *)arg;
	unsigned tocall = batch;
	pin(cpu);
	for (;;) {
		while (use_buf()) {
			host.done++;
			if (!--tocall) {
				tocall = batch;
				if (do_sleep)
					call_used();
			}
		}
		if (do_sleep)
			call_used(); /* ran empty: signal what is left, like a device that goes idle */
		if (host.done == nbufs)
			break;
		if (do_sleep) {
			if (enable_kick())
				wait_fd(kickfd);
		} else {
			while (host.used_idx == load_acquire(&ring.avail->idx))
				_mm_pause();
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int opt, gcpu = 0, hcpu = 1;
	pthread_t g, h;
	struct timespec t0, t1;
	void *mem;
	unsigned i;
	double secs;

	while ((opt = getopt(argc, argv, "n:q:b:sx:g:h:")) != -1) {
		switch (opt) {
		case 'n': nbufs = strtoull(optarg, NULL, 0); break;
		case 'q': num = strtoul(optarg, NULL, 0); break;
		case 'b': batch = strtoul(optarg, NULL, 0); break;
		case 's': do_sleep = 1; break;
		case 'x': exit_cycles = entry_cycles = strtoull(optarg, NULL, 0); break;
		case 'g': gcpu = atoi(optarg); break;
		case 'h': hcpu = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-n bufs] [-q queue] [-b batch] [-s] [-x cycles] "
					"[-g cpu] [-h cpu]\n", argv[0]);
			return 2;
		}
	}
	if (!num || (num & (num - 1)) || num > 32768 || !batch || batch > num || !nbufs) {
		fprintf(stderr, "split_ring: error: queue must be a power of two <= 32768, "
				"0 < batch <= queue, buffers > 0\n");
		return 2;
	}
	if (posix_memalign(&mem, 4096, vring_size(num, 4096)))
		die("out of memory");
	memset(mem, 0, vring_size(num, 4096));
	vring_init(&ring, num, mem, 4096);
	tokens = calloc(num, sizeof *tokens);
	for (i = 0; i + 1 < num; i++)
		ring.desc[i].next = i + 1;
	guest.num_free = num;
	kickfd = eventfd(0, EFD_NONBLOCK);
	callfd = eventfd(0, EFD_NONBLOCK);
	if (kickfd < 0 || callfd < 0 || !tokens)
		die("cannot set up eventfds");

	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_create(&h, NULL, run_host, &hcpu);
	pthread_create(&g, NULL, run_guest, &gcpu);
	pthread_join(g, NULL);
	pthread_join(h, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
	if (guest.completed != nbufs || host.done != nbufs)
		die("completion count mismatch");
	printf("buffers=%llu queue=%u batch=%u mode=%s seconds=%.6f buffers_per_s=%.1f "
	       "kicks=%llu calls=%llu\n",
	       nbufs, num, batch, do_sleep ? "sleep" : "poll", secs, nbufs / secs,
	       guest.kicks, host.calls);
	return 0;
}
