/*
 * split_common.h: what the two split-ring yardsticks (split_ring.c, inorder_ring.c) share on
 * top of common.h: the ring (<linux/virtio_ring.h>'s struct vring, laid out by vring_init with
 * the legacy 4096-byte alignment), each side's indexes, and the event-index notification
 * suppression of the spec's "Used Buffer Notification Suppression" and "Available Buffer
 * Notification Suppression" (VIRTIO_F_EVENT_IDX: used_event / avail_event and
 * vring_need_event), which IN_ORDER leaves as it is. Include after defining RING_NAME; the ring
 * file then defines add_buf, get_used, use_buf, flush_used and ring_setup (calling
 * split_setup).
 */
#ifndef CRING_SPLIT_COMMON_H
#define CRING_SPLIT_COMMON_H

#include "common.h"

static struct vring ring;

/* guest state (only the guest thread touches it): avail_idx counts buffers added,
 * last_used_idx used entries consumed, kicked_avail_idx avail_idx at the last kick check;
 * free_head and num_free are split_ring's free list */
static struct CACHE_ALIGNED {
	uint16_t avail_idx, last_used_idx, kicked_avail_idx;
	unsigned free_head, num_free;
} guest;

/* host state: next_avail counts buffers used, used_idx those published (the same in
 * split_ring, which publishes each at once), called_used_idx used_idx at the last call check,
 * last_head the head of the last buffer used (inorder_ring's batch entry) */
static struct CACHE_ALIGNED {
	uint16_t next_avail, used_idx, called_used_idx;
	unsigned last_head;
} host;

static const char *ring_check_args(void)
{
	if (!num || (num & (num - 1)) || num > 32768)
		return "queue must be a power of two <= 32768";
	return NULL;
}

static void split_setup(void)
{
	void *mem;
	if (posix_memalign(&mem, 4096, vring_size(num, 4096)))
		die("out of memory");
	memset(mem, 0, vring_size(num, 4096));
	vring_init(&ring, num, mem, 4096);
	tokens = calloc(num, sizeof *tokens);
	if (!tokens)
		die("out of memory");
}

/* ---- guest (driver) ---- */
static int need_kick(void)
{
	uint16_t old = guest.kicked_avail_idx, new = guest.avail_idx;
	/* full fence: avail->idx is published before avail_event is read (pairs with the host's
	 * fence between writing avail_event and re-reading avail->idx) */
	full_fence();
	guest.kicked_avail_idx = new;
	return vring_need_event(load_acquire(&vring_avail_event(&ring)), new, old);
}

static int used_pending(void)
{
	return guest.last_used_idx != load_acquire(&ring.used->idx);
}

static int enable_call(void)
{
	/* used_event = where we are; fence; re-check (the lost-wakeup check) */
	store_release(&vring_used_event(&ring), guest.last_used_idx);
	full_fence();
	return !used_pending(); /* 1: nothing new, sleep */
}

/* With the event index, used_event stays behind once passed: nothing to disable. */
static void disable_call(void) {}

/* ---- host (device) ---- */
static int need_call(void)
{
	uint16_t old = host.called_used_idx, new = host.used_idx;
	if (new == old)
		return 0; /* nothing published since the last check */
	full_fence(); /* used->idx published before used_event is read */
	host.called_used_idx = new;
	return vring_need_event(load_acquire(&vring_used_event(&ring)), new, old);
}

static int avail_pending(void)
{
	/* the acquire pairs with the guest's release of avail->idx */
	return host.next_avail != load_acquire(&ring.avail->idx);
}

static int enable_kick(void)
{
	store_release(&vring_avail_event(&ring), host.next_avail);
	full_fence();
	return !avail_pending(); /* 1: nothing new, sleep */
}

static void disable_kick(void) {}

#endif /* CRING_SPLIT_COMMON_H */
