/*
 * split_ring.c: a plain C split virtqueue run the way Linux tools/virtio/ringtest runs one,
 * as the yardstick for vbench's native engine (benchmarks/native_bench.py builds and runs it).
 *
 * The ring is the real one: the structures, vring_init/vring_size layout and the event-index
 * test (vring_need_event, used_event, avail_event) come from <linux/virtio_ring.h>
 * (split_common.h). The guest (driver) takes descriptors from a free list chained through
 * `next`, publishes avail.idx on every add and reaps used entries one at a time; the host
 * (device) reads the avail ring, writes one used entry per buffer and publishes used.idx with
 * each. Threads, options, exit emulation, token check and output are common.h's (see there).
 *
 * Build: gcc -O2 -pthread -o split_ring split_ring.c
 * Run:   ./split_ring [-n buffers] [-q queue] [-b batch] [-s] [-x exit_cycles] [-g cpu] [-h cpu]
 */
#define RING_NAME "split_ring"
#include "split_common.h"

static void ring_setup(void)
{
	unsigned i;
	split_setup();
	for (i = 0; i + 1 < num; i++)
		ring.desc[i].next = i + 1;
	guest.num_free = num;
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

static unsigned get_used(void)
{
	unsigned head, idx;
	if (!used_pending()) /* the acquire pairs with the host's release of used->idx */
		return 0;
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

/* ---- host (device) ---- */
static int use_buf(void)
{
	unsigned idx, head;
	if (!avail_pending())
		return 0;
	idx = host.next_avail & (num - 1);
	head = ring.avail->ring[idx];
	if (head >= num)
		die("lost, duplicated or corrupted buffer");
	check_token((void *)(uintptr_t)ring.desc[head].addr, ring.desc[head].len);
	ring.used->ring[idx].id = head;
	ring.used->ring[idx].len = sizeof(uint64_t);
	host.used_idx = ++host.next_avail;
	/* release: the used element is visible before the index (pairs with get_used's acquire) */
	store_release(&ring.used->idx, host.used_idx);
	return 1;
}

static void flush_used(void) {} /* every used entry was published as it was written */
