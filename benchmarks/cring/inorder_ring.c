/*
 * inorder_ring.c: a plain C split virtqueue with VIRTIO_F_IN_ORDER, the yardstick for vbench's
 * virtio-split with in_order = true (benchmarks/native_bench.py builds and runs it).
 *
 * The layout and the event-index test are the split ring's, from <linux/virtio_ring.h>
 * (vring_init, vring_need_event, used_event, avail_event). What IN_ORDER changes, after the
 * virtio spec (1.1 and later: "Split Virtqueues", "The Virtqueue Descriptor Table" and
 * "In-order use of descriptors"):
 *
 *  - the driver uses descriptors in ring order, starting from offset 0 and wrapping at the end
 *    of the table: buffer k (counting from 0) is descriptor k mod queue, so there is no free
 *    list, only the count of buffers outstanding. It still writes the head into the avail ring
 *    (the spec keeps that step), but the device, knowing the order, does not read it;
 *  - the device uses buffers in the order they were made available and may write one used
 *    entry per batch: the id of the head of the batch's last buffer, placed at the offset of
 *    the batch's first buffer, then increments used.idx by the batch's size. The buffers it
 *    skipped are used completely. Here a batch is what the host used since its last flush
 *    (every `batch` completions and when it runs empty), so -b 1 writes one entry per buffer;
 *  - the driver reads that one entry, checks its id against used.idx, and then returns the
 *    batch's buffers one per call without reading the ring again, as Linux's in-order driver
 *    does (virtqueue_get_buf_ctx_split_in_order in drivers/virtio/virtio_ring.c keeps the
 *    entry in vq->batch_last and hands back one buffer per virtqueue_get_buf). Until
 *    2026-12-07 this get_used took the whole batch in one call, skipping the step per buffer
 *    that a driver handing each buffer back to its owner makes; vbench's driver (one buffer
 *    per reap, as Linux's) was measured against that.
 *
 * The event index is split_common.h's; threads, options, exit emulation, token check and
 * output are common.h's (see there).
 *
 * Build: gcc -O2 -pthread -o inorder_ring inorder_ring.c
 * Run:   ./inorder_ring [-n buffers] [-q queue] [-b batch] [-s] [-x exit_cycles] [-g cpu] [-h cpu]
 */
#define RING_NAME "inorder_ring"
#include "split_common.h"

/* Here guest.avail_idx mod queue is the next descriptor: no free list. */
static void ring_setup(void)
{
	split_setup();
}

/* ---- guest (driver) ---- */
static int add_buf(unsigned long long token)
{
	unsigned head = guest.avail_idx & (num - 1); /* descriptors in ring order */
	if ((uint16_t)(guest.avail_idx - guest.last_used_idx) == num)
		return -1;
	tokens[head] = token;
	ring.desc[head].addr = (uint64_t)(uintptr_t)&tokens[head];
	ring.desc[head].len = sizeof(uint64_t);
	ring.desc[head].flags = VRING_DESC_F_WRITE;
	ring.avail->ring[head] = head;
	/* release: descriptor and avail entry before the index (pairs with the host's acquire) */
	store_release(&ring.avail->idx, ++guest.avail_idx);
	return 0;
}

/* the used entry being worked off (its id; num: none), as Linux's vq->batch_last */
static unsigned batch_last = ~0u;

static unsigned get_used(void)
{
	unsigned first = guest.last_used_idx & (num - 1);
	if (batch_last >= num) {
		uint16_t used = load_acquire(&ring.used->idx); /* pairs with the host's release */
		struct vring_used_elem *e;
		if (used == guest.last_used_idx)
			return 0;
		/* one entry per batch, at the offset of the batch's first buffer */
		e = &ring.used->ring[first];
		batch_last = e->id;
		if (batch_last >= num || e->len != sizeof(uint64_t) ||
		    ((batch_last - first) & (num - 1)) >= (uint16_t)(used - guest.last_used_idx))
			die("corrupt used entry");
	}
	if (first == batch_last)
		batch_last = ~0u; /* the batch's last buffer: the next call reads the ring */
	guest.last_used_idx++;
	return 1;
}

/* ---- host (device) ---- */
static int use_buf(void)
{
	unsigned head;
	if (!avail_pending())
		return 0;
	head = host.next_avail & (num - 1); /* in order: no need to read avail->ring */
	check_token((void *)(uintptr_t)ring.desc[head].addr, ring.desc[head].len);
	host.last_head = head;
	host.next_avail++;
	return 1;
}

static void flush_used(void)
{
	struct vring_used_elem *e;
	if (host.next_avail == host.used_idx)
		return;
	e = &ring.used->ring[host.used_idx & (num - 1)];
	e->id = host.last_head;
	e->len = sizeof(uint64_t);
	/* release: the entry before the index that covers the whole batch */
	host.used_idx = host.next_avail;
	store_release(&ring.used->idx, host.used_idx);
}
