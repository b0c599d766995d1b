/*
 * packed_ring.c: a plain C packed virtqueue (virtio 1.1 and later, "Packed Virtqueues"), the
 * yardstick for vbench's virtio-packed (benchmarks/native_bench.py builds and runs it).
 *
 * The structures and constants are <linux/virtio_ring.h>'s: struct vring_packed_desc (addr,
 * len, id, flags: 16 bytes), struct vring_packed_desc_event (off_wrap, flags), the flag bit
 * positions VRING_PACKED_DESC_F_AVAIL / _USED, VRING_PACKED_EVENT_FLAG_ENABLE / DISABLE /
 * DESC and VRING_PACKED_EVENT_F_WRAP_CTR, and the event test vring_need_event. The rules, after
 * the spec's sections on packed virtqueues:
 *
 *  - "Driver and Device Ring Wrap Counters": each side keeps a wrap counter per position it
 *    walks, starting at 1 and flipping whenever its position passes the last descriptor;
 *    queue sizes need not be powers of two (up to 2^15);
 *  - "Available and Used Ring Wrap Counters" / "Marking descriptors available": the driver
 *    writes addr, len, id, then (release) flags with AVAIL = its wrap counter and USED = its
 *    inverse; the device sees a descriptor available when AVAIL != USED and AVAIL equals its
 *    own wrap counter;
 *  - "Writing used descriptors" / "Receiving Used Buffers": the device writes a used
 *    descriptor (the buffer id, the length written) at its own used position, in the order it
 *    completes buffers, overwriting descriptors it has read, then (release) flags with AVAIL =
 *    USED = its used wrap counter; the driver sees a used descriptor when both bits equal its
 *    used wrap counter, and frees the buffer id the descriptor names. Buffer ids are the
 *    driver's (a free list), the descriptor positions the ring's;
 *  - "Event Suppression Structure Format" / "Notifications": the device event suppression
 *    area (written by the device) governs kicks, the driver event suppression area (written by
 *    the driver) calls. Flags ENABLE, DISABLE, or (VIRTIO_F_EVENT_IDX) DESC: notify when the
 *    descriptor at off_wrap (offset in bits 0-14, wrap counter in bit 15) is made available
 *    (kick) or used (call). The notifier tests it over the descriptors since its last check:
 *    an event in the other lap is one queue length back, then vring_need_event. Both areas
 *    start DISABLE; a side about to sleep writes off_wrap = its next position and wrap, then
 *    DESC, fences and re-checks its next descriptor; once awake it writes DISABLE again, as
 *    vhost does (an event left armed would fire again every second lap of the ring).
 *
 * Threads, options, exit emulation, token check and output are common.h's (see there).
 *
 * Build: gcc -O2 -pthread -o packed_ring packed_ring.c
 * Run:   ./packed_ring [-n buffers] [-q queue] [-b batch] [-s] [-x exit_cycles] [-g cpu] [-h cpu]
 */
#define RING_NAME "packed_ring"
#include "common.h"

#define F_AVAIL (1u << VRING_PACKED_DESC_F_AVAIL)
#define F_USED (1u << VRING_PACKED_DESC_F_USED)
#define WRAP_BIT (1u << VRING_PACKED_EVENT_F_WRAP_CTR)

static struct vring_packed_desc *desc;
/* the driver area (driver event suppression) and the device area (device event suppression),
 * each on a cache line of its own */
static struct vring_packed_desc_event *driver_event, *device_event;
static uint16_t *id_next; /* the driver's free list of buffer ids (its own memory) */

/* guest state */
static struct CACHE_ALIGNED {
	uint16_t next_avail, next_used; /* positions in the ring */
	uint8_t avail_wrap, used_wrap;  /* the driver's ring wrap counters */
	uint16_t free_id, num_free;
	uint16_t added;                 /* made available since the last kick check */
} guest;

/* host state */
static struct CACHE_ALIGNED {
	uint16_t next_avail, next_used;
	uint8_t avail_wrap, used_wrap;  /* the device's ring wrap counters */
	uint16_t used;                  /* marked used since the last call check */
} host;

static const char *ring_check_args(void)
{
	if (!num || num > 32768)
		return "queue must be 1 to 32768 (2^15)";
	return NULL;
}

static void ring_setup(void)
{
	void *mem;
	unsigned i;
	size_t ring_bytes = ((num * sizeof *desc) + 63) & ~(size_t)63;
	if (posix_memalign(&mem, 4096, ring_bytes + 128))
		die("out of memory");
	memset(mem, 0, ring_bytes + 128);
	desc = mem;
	driver_event = (void *)((char *)mem + ring_bytes);
	device_event = (void *)((char *)mem + ring_bytes + 64);
	driver_event->flags = VRING_PACKED_EVENT_FLAG_DISABLE;
	device_event->flags = VRING_PACKED_EVENT_FLAG_DISABLE;
	tokens = calloc(num, sizeof *tokens);
	id_next = calloc(num, sizeof *id_next);
	if (!tokens || !id_next)
		die("out of memory");
	for (i = 0; i + 1 < num; i++)
		id_next[i] = i + 1;
	guest.num_free = num;
	guest.avail_wrap = guest.used_wrap = 1;
	host.avail_wrap = host.used_wrap = 1;
}

/* Is the event at off_wrap among the `count` descriptors before position `pos` (lap `wrap`)? */
static inline int event_crossed(const struct vring_packed_desc_event *ev, uint16_t pos,
				uint8_t wrap, uint16_t count)
{
	uint16_t flags = load_acquire(&ev->flags), off_wrap, off;
	if (flags == VRING_PACKED_EVENT_FLAG_DISABLE)
		return 0;
	if (flags != VRING_PACKED_EVENT_FLAG_DESC)
		return count != 0; /* ENABLE */
	off_wrap = load_acquire(&ev->off_wrap);
	off = off_wrap & ~WRAP_BIT;
	if (!(off_wrap & WRAP_BIT) != !wrap)
		off -= num; /* the event is in the other lap: one queue length back */
	return vring_need_event(off, pos, (uint16_t)(pos - count));
}

/* ---- guest (driver) ---- */
static int add_buf(unsigned long long token)
{
	struct vring_packed_desc *d;
	uint16_t id;
	if (!guest.num_free)
		return -1;
	id = guest.free_id;
	guest.free_id = id_next[id];
	guest.num_free--;
	tokens[id] = token;
	d = &desc[guest.next_avail];
	d->addr = (uint64_t)(uintptr_t)&tokens[id];
	d->len = sizeof(uint64_t);
	d->id = id;
	/* release: addr, len and id are visible before the flags that make it available (pairs
	 * with the host's acquire load of the flags) */
	store_release(&d->flags, VRING_DESC_F_WRITE |
				 (guest.avail_wrap ? F_AVAIL : F_USED));
	if (++guest.next_avail == num) {
		guest.next_avail = 0;
		guest.avail_wrap ^= 1;
	}
	guest.added++;
	return 0;
}

static int need_kick(void)
{
	uint16_t count = guest.added;
	full_fence(); /* the flags published before the device's event area is read */
	guest.added = 0;
	return event_crossed(device_event, guest.next_avail, guest.avail_wrap, count);
}

static inline int is_used(uint16_t flags, uint8_t wrap)
{
	return !(flags & F_AVAIL) == !wrap && !(flags & F_USED) == !wrap;
}

static unsigned get_used(void)
{
	struct vring_packed_desc *d = &desc[guest.next_used];
	uint16_t id;
	/* the acquire pairs with the host's release of the used flags */
	if (!is_used(load_acquire(&d->flags), guest.used_wrap))
		return 0;
	id = d->id;
	if (id >= num || d->len != sizeof(uint64_t))
		die("corrupt used descriptor");
	id_next[id] = guest.free_id;
	guest.free_id = id;
	guest.num_free++;
	if (++guest.next_used == num) {
		guest.next_used = 0;
		guest.used_wrap ^= 1;
	}
	return 1;
}

static int used_pending(void)
{
	return is_used(load_acquire(&desc[guest.next_used].flags), guest.used_wrap);
}

static int enable_call(void)
{
	/* call me when the descriptor at my next used position (this lap) is used; fence;
	 * re-check it (the lost-wakeup check) */
	store_release(&driver_event->off_wrap,
		      guest.next_used | (guest.used_wrap ? WRAP_BIT : 0));
	store_release(&driver_event->flags, VRING_PACKED_EVENT_FLAG_DESC);
	full_fence();
	return !used_pending(); /* 1: nothing new, sleep */
}

static void disable_call(void)
{
	store_release(&driver_event->flags, VRING_PACKED_EVENT_FLAG_DISABLE);
}

/* ---- host (device) ---- */
static inline int is_avail(uint16_t flags, uint8_t wrap)
{
	return !(flags & F_AVAIL) != !(flags & F_USED) && !(flags & F_AVAIL) == !wrap;
}

static int use_buf(void)
{
	struct vring_packed_desc *d = &desc[host.next_avail], *u;
	uint16_t id;
	/* the acquire pairs with the guest's release of the avail flags */
	if (!is_avail(load_acquire(&d->flags), host.avail_wrap))
		return 0;
	id = d->id;
	if (id >= num)
		die("lost, duplicated or corrupted buffer");
	check_token((void *)(uintptr_t)d->addr, d->len);
	if (++host.next_avail == num) {
		host.next_avail = 0;
		host.avail_wrap ^= 1;
	}
	u = &desc[host.next_used];
	u->id = id;
	u->len = sizeof(uint64_t);
	/* release: id and len before the flags that mark it used (pairs with get_used) */
	store_release(&u->flags, host.used_wrap ? F_AVAIL | F_USED : 0);
	if (++host.next_used == num) {
		host.next_used = 0;
		host.used_wrap ^= 1;
	}
	host.used++;
	return 1;
}

static void flush_used(void) {} /* every used descriptor was published as it was written */

static int need_call(void)
{
	uint16_t count = host.used;
	if (!count)
		return 0; /* nothing published since the last check */
	full_fence(); /* the used flags published before the driver's event area is read */
	host.used = 0;
	return event_crossed(driver_event, host.next_used, host.used_wrap, count);
}

static int avail_pending(void)
{
	return is_avail(load_acquire(&desc[host.next_avail].flags), host.avail_wrap);
}

static int enable_kick(void)
{
	store_release(&device_event->off_wrap,
		      host.next_avail | (host.avail_wrap ? WRAP_BIT : 0));
	store_release(&device_event->flags, VRING_PACKED_EVENT_FLAG_DESC);
	full_fence();
	return !avail_pending(); /* 1: nothing new, sleep */
}

static void disable_kick(void)
{
	store_release(&device_event->flags, VRING_PACKED_EVENT_FLAG_DISABLE);
}
