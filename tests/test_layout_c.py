"""Cross-check vbench.layout against C that nobody here wrote, compiled with gcc in the test.

* The virtio split ring against the real Linux uapi header ``<linux/virtio_ring.h>``: struct
  offsets, ``vring_size``, ``vring_init``, ``vring_used_event``/``vring_avail_event``, the flag
  constants, and the bytes a C program writes through the header's pointers.
* ``need_event`` (jitted) against the header's ``vring_need_event`` on >100k u16 triples.
* The vbus structs (AlacrityVM shm_signal.h, ioq.h, venet.h) against a C declaration written
  from their published definitions (x86-64 natural alignment), and the line geometry the
  reference relies on.
* The ``vbench layout`` JSON form: keys present, fields inside areas, areas disjoint.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from numba import njit

from vbench import layout
from vbench.layout import LINE, Struct
from vbench.memory import need_event

if shutil.which("gcc") is None:
    pytest.skip("gcc is not installed", allow_module_level=True)


def _build(tmp: Path, name: str, source: str) -> Path:
    src = tmp / f"{name}.c"
    exe = tmp / name
    src.write_text(source)
    subprocess.run(
        ["gcc", "-std=gnu11", "-O1", "-Wall", "-o", str(exe), str(src)],
        check=True,
        capture_output=True,
        text=True,
    )
    return exe


def _run(exe: Path, *args: str, stdin: str | None = None) -> str:
    out = subprocess.run([str(exe), *args], input=stdin, check=True, capture_output=True, text=True)
    return out.stdout


def _keyed(stdout: str) -> dict[str, int]:
    """Lines ``key value`` -> {key: value}; a key printed twice is an error."""
    out: dict[str, int] = {}
    for line in stdout.splitlines():
        key, value = line.split()
        assert key not in out, f"duplicate key {key}"
        out[key] = int(value)
    return out


def _line(off: int) -> int:
    return off // LINE


def _straddles(off: int, size: int) -> bool:
    return _line(off) != _line(off + size - 1)


# =============================================================================================
# 1. The split ring against <linux/virtio_ring.h>
# =============================================================================================
QUEUE_SIZES = (1, 2, 4, 8, 16, 64, 128, 256, 1024, 4096, 32768)
ALIGNS = (4, 64, 4096)

VRING_C = r"""
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_ring.h>

static const unsigned nums[] = {1, 2, 4, 8, 16, 64, 128, 256, 1024, 4096, 32768};
static const unsigned long aligns[] = {4, 64, 4096};

#define P(key, val) printf("%s %llu\n", key, (unsigned long long)(val))

/* A buffer aligned to 4096 so that vring_init's alignment of absolute addresses equals the
   alignment of offsets from the base. */
static char *ring_buffer(unsigned size) {
    size_t alloc = ((size_t)size + 4095) & ~(size_t)4095;
    char *p = aligned_alloc(4096, alloc);
    if (!p) { perror("aligned_alloc"); exit(2); }
    return p;
}

static void layout_dump(void) {
    P("sizeof.vring_desc", sizeof(struct vring_desc));
    P("alignof.vring_desc", _Alignof(struct vring_desc));
    P("off.vring_desc.addr", offsetof(struct vring_desc, addr));
    P("off.vring_desc.len", offsetof(struct vring_desc, len));
    P("off.vring_desc.flags", offsetof(struct vring_desc, flags));
    P("off.vring_desc.next", offsetof(struct vring_desc, next));
    P("sizeof.vring_used_elem", sizeof(struct vring_used_elem));
    P("alignof.vring_used_elem", _Alignof(struct vring_used_elem));
    P("off.vring_used_elem.id", offsetof(struct vring_used_elem, id));
    P("off.vring_used_elem.len", offsetof(struct vring_used_elem, len));
    P("sizeof.vring_avail", sizeof(struct vring_avail));
    P("off.vring_avail.flags", offsetof(struct vring_avail, flags));
    P("off.vring_avail.idx", offsetof(struct vring_avail, idx));
    P("off.vring_avail.ring", offsetof(struct vring_avail, ring));
    P("sizeof.vring_used", sizeof(struct vring_used));
    P("off.vring_used.flags", offsetof(struct vring_used, flags));
    P("off.vring_used.idx", offsetof(struct vring_used, idx));
    P("off.vring_used.ring", offsetof(struct vring_used, ring));
    P("const.VRING_DESC_F_NEXT", VRING_DESC_F_NEXT);
    P("const.VRING_DESC_F_WRITE", VRING_DESC_F_WRITE);
    P("const.VRING_DESC_F_INDIRECT", VRING_DESC_F_INDIRECT);
    P("const.VRING_USED_F_NO_NOTIFY", VRING_USED_F_NO_NOTIFY);
    P("const.VRING_AVAIL_F_NO_INTERRUPT", VRING_AVAIL_F_NO_INTERRUPT);
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        for (size_t j = 0; j < sizeof aligns / sizeof aligns[0]; j++) {
            unsigned num = nums[i];
            unsigned long align = aligns[j];
            unsigned size = vring_size(num, align);
            char *b = ring_buffer(size);
            struct vring vr;
            vring_init(&vr, num, b, align);
            printf("ring %u %lu %u %td %td %td %td %td\n", num, align, size,
                   (char *)vr.desc - b, (char *)vr.avail - b, (char *)vr.used - b,
                   (char *)&vring_used_event(&vr) - b,
                   (char *)&vring_avail_event(&vr) - b);
            free(b);
        }
    }
}

/* Fill every field of a ring through the header's own pointers, then dump the bytes. */
static void fill_dump(unsigned num, unsigned long align) {
    unsigned size = vring_size(num, align);
    char *b = ring_buffer(size);
    struct vring vr;
    memset(b, 0x5A, size);
    vring_init(&vr, num, b, align);
    for (unsigned i = 0; i < num; i++) {
        vr.desc[i].addr = 0x1122334400000000ull + i;
        vr.desc[i].len = 0x10000u + i;
        vr.desc[i].flags = (uint16_t)(i & 7);
        vr.desc[i].next = (uint16_t)((i + 1) % num);
        vr.avail->ring[i] = (uint16_t)(i * 7 + 3);
        vr.used->ring[i].id = 0x20000u + i;
        vr.used->ring[i].len = 0x30000u + i;
    }
    vr.avail->flags = 0xA1A1;
    vr.avail->idx = 0xA2A2;
    vr.used->flags = 0xC1C1;
    vr.used->idx = 0xC2C2;
    vring_used_event(&vr) = 0xBEEF;
    vring_avail_event(&vr) = 0xFEED;
    printf("%u\n", size);
    for (unsigned k = 0; k < size; k++) printf("%02x", (unsigned char)b[k]);
    printf("\n");
    free(b);
}

int main(int argc, char **argv) {
    if (argc == 3) fill_dump((unsigned)atoi(argv[1]), (unsigned long)atol(argv[2]));
    else layout_dump();
    return 0;
}
"""


@pytest.fixture(scope="module")
def vring_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("vring"), "vring", VRING_C)


@pytest.fixture(scope="module")
def vring_c(vring_exe: Path) -> tuple[dict[str, int], dict[tuple[int, int], tuple[int, ...]]]:
    keyed, rings = {}, {}
    for line in _run(vring_exe).splitlines():
        parts = line.split()
        if parts[0] == "ring":
            num, align, *rest = (int(x) for x in parts[1:])
            rings[num, align] = tuple(rest)
        else:
            keyed.update(_keyed(line))
    assert set(rings) == {(n, a) for n in QUEUE_SIZES for a in ALIGNS}
    return keyed, rings


def test_vring_structs_match_header(vring_c):
    c, _ = vring_c
    for s in (layout.VRING_DESC, layout.VRING_USED_ELEM):
        assert s.size == c[f"sizeof.{s.name}"], s.name
        assert s.align == c[f"alignof.{s.name}"], s.name
        for f in s.fields:
            assert s.offset(f.name) == c[f"off.{s.name}.{f.name}"], (s.name, f.name)
            assert f.offset == c[f"off.{s.name}.{f.name}"], (s.name, f.name)
    # every C member is modelled (and nothing else)
    assert [f.name for f in layout.VRING_DESC.fields] == ["addr", "len", "flags", "next"]
    assert [f.name for f in layout.VRING_USED_ELEM.fields] == ["id", "len"]
    # 16 and 8 are what the virtio spec states, independently of gcc
    assert (c["sizeof.vring_desc"], c["sizeof.vring_used_elem"]) == (16, 8)


@pytest.mark.parametrize(
    "name",
    [
        "VRING_DESC_F_NEXT",
        "VRING_DESC_F_WRITE",
        "VRING_DESC_F_INDIRECT",
        "VRING_USED_F_NO_NOTIFY",
        "VRING_AVAIL_F_NO_INTERRUPT",
    ],
)
def test_vring_constants_match_header(vring_c, name):
    c, _ = vring_c
    assert getattr(layout, name) == c[f"const.{name}"]


@pytest.mark.parametrize("area", ["avail", "used"])
def test_split_area_headers_match_header(vring_c, area):
    """flags, idx and ring[] of vring_avail / vring_used sit where the header puts them."""
    c, _ = vring_c
    for n in (1, 256):
        lay = layout.split_layout(n, 4096)
        a = lay.area(area)
        for fname in ("flags", "idx", "ring"):
            assert a.field(fname).offset == c[f"off.vring_{area}.{fname}"], (n, fname)
        # the trailing event word follows ring[n] (sizeof of the flexible struct + ring bytes)
        tail = "used_event" if area == "avail" else "avail_event"
        elem = 2 if area == "avail" else c["sizeof.vring_used_elem"]
        assert a.field(tail).offset == c[f"sizeof.vring_{area}"] + elem * n


@pytest.mark.parametrize("num", QUEUE_SIZES)
@pytest.mark.parametrize("align", ALIGNS)
def test_split_ring_matches_vring_init(vring_c, num, align):
    _, rings = vring_c
    size, desc, avail, used, used_event, avail_event = rings[num, align]
    assert layout.vring_size(num, align) == size
    assert layout.vring_init_offsets(num, align) == (desc, avail, used)

    lay = layout.split_layout(num, align)
    assert lay.params["vring_size"] == size
    assert lay.area("desc").offset == desc
    assert lay.area("avail").offset == avail
    assert lay.area("used").offset == used
    assert lay.area("avail").at("used_event") == used_event
    assert lay.area("used").at("avail_event") == avail_event
    # the ring ends exactly with avail_event: vring_size() bytes, nothing more
    assert lay.size == size == avail_event + 2
    assert lay.area("desc").size == avail - desc
    assert lay.area("avail").size == used_event + 2 - avail


FILL_CASES = [(1, 4), (8, 4), (16, 64), (256, 4096), (1024, 64)]


@pytest.mark.parametrize(("num", "align"), FILL_CASES)
def test_split_ring_bytes_written_through_header(vring_exe, num, align):
    """Every value a C program stores via the header's pointers is where vbench reads it."""
    size_line, hexdump = _run(vring_exe, str(num), str(align)).split()
    buf = bytes.fromhex(hexdump)
    assert len(buf) == int(size_line) == layout.vring_size(num, align)
    lay = layout.split_layout(num, align)

    def u(off: int, width: int) -> int:
        return int.from_bytes(buf[off : off + width], "little")

    d, a, us = lay.area("desc"), lay.area("avail"), lay.area("used")
    ds, es = layout.VRING_DESC, layout.VRING_USED_ELEM
    ring_a, ring_u = a.at("ring"), us.at("ring")
    for i in range(num):
        base = d.at("ring") + i * ds.size
        assert u(base + ds.offset("addr"), 8) == 0x1122334400000000 + i
        assert u(base + ds.offset("len"), 4) == 0x10000 + i
        assert u(base + ds.offset("flags"), 2) == i & 7
        assert u(base + ds.offset("next"), 2) == (i + 1) % num
        assert u(ring_a + 2 * i, 2) == (i * 7 + 3) & 0xFFFF
        assert u(ring_u + i * es.size + es.offset("id"), 4) == 0x20000 + i
        assert u(ring_u + i * es.size + es.offset("len"), 4) == 0x30000 + i
    assert u(a.at("flags"), 2) == 0xA1A1
    assert u(a.at("idx"), 2) == 0xA2A2
    assert u(us.at("flags"), 2) == 0xC1C1
    assert u(us.at("idx"), 2) == 0xC2C2
    assert u(a.at("used_event"), 2) == 0xBEEF
    assert u(us.at("avail_event"), 2) == 0xFEED

    # every byte the C program wrote lies inside some field of vbench's layout
    covered = np.zeros(len(buf), dtype=bool)
    for area in lay.areas:
        for f in area.fields:
            covered[area.offset + f.offset : area.offset + f.offset + f.size] = True
    written = np.frombuffer(buf, dtype=np.uint8) != 0x5A
    assert not np.any(written & ~covered), np.flatnonzero(written & ~covered)[:10]


# =============================================================================================
# 2. need_event against vring_need_event
# =============================================================================================
NEED_EVENT_C = r"""
#include <stdio.h>
#include <linux/virtio_ring.h>

int main(void) {
    unsigned e, n, o;
    while (scanf("%u %u %u", &e, &n, &o) == 3)
        printf("%d\n", vring_need_event((__u16)e, (__u16)n, (__u16)o) ? 1 : 0);
    return 0;
}
"""

U16_EDGES = (0, 1, 2, 3, 0x7FFE, 0x7FFF, 0x8000, 0x8001, 0xFFFD, 0xFFFE, 0xFFFF, 255, 256, 4096)
DELTAS = (0, 1, 2, 3, 255, 256, 0x7FFF, 0x8000, 0x8001, 0xFFFE, 0xFFFF)


def _need_event_triples() -> np.ndarray:
    rows = []
    # every combination of edge values
    edges = np.array(U16_EDGES, dtype=np.int64)
    e, n, o = np.meshgrid(edges, edges, edges, indexing="ij")
    rows.append(np.stack([e.ravel(), n.ravel(), o.ravel()], axis=1))
    # structured: old at an edge, new = old + d, event around old and new (wrapping)
    for old in U16_EDGES:
        for d in DELTAS:
            new = (old + d) & 0xFFFF
            for ev in (old - 1, old, old + 1, new - 1, new, new + 1, old + d // 2):
                rows.append(np.array([[ev & 0xFFFF, new, old]], dtype=np.int64))
    # random triples, and random ones with a small window (the common case in a ring)
    rng = np.random.default_rng(20090806)
    rows.append(rng.integers(0, 0x10000, size=(100_000, 3), dtype=np.int64))
    old = rng.integers(0, 0x10000, size=20_000, dtype=np.int64)
    new = (old + rng.integers(0, 300, size=20_000)) & 0xFFFF
    ev = (old + rng.integers(-5, 305, size=20_000)) & 0xFFFF
    rows.append(np.stack([ev, new, old], axis=1))
    return np.concatenate(rows)


@njit
def _need_event_all(t):
    out = np.empty(t.shape[0], dtype=np.int64)
    for i in range(t.shape[0]):
        out[i] = 1 if need_event(t[i, 0], t[i, 1], t[i, 2]) else 0
    return out


@pytest.fixture(scope="module")
def need_event_cases(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray]:
    exe = _build(tmp_path_factory.mktemp("need_event"), "need_event", NEED_EVENT_C)
    triples = _need_event_triples()
    stdin = "\n".join(f"{e} {n} {o}" for e, n, o in triples.tolist()) + "\n"
    expected = np.array(_run(exe, stdin=stdin).split(), dtype=np.int64)
    assert expected.shape == (len(triples),)
    return triples, expected


def test_need_event_cases_are_rich(need_event_cases):
    triples, expected = need_event_cases
    assert len(triples) >= 100_000
    e, n, o = triples.T
    assert np.any(e == o) and np.any(e == n) and np.any(n == o)
    assert np.any((o > 0xFF00) & (n < 0x100))  # window wrapping through 0
    # both answers occur often enough that a constant function would fail
    assert 0.001 < expected.mean() < 0.999


def test_need_event_jitted_loop_matches_header(need_event_cases):
    triples, expected = need_event_cases
    got = _need_event_all(triples)
    bad = np.flatnonzero(got != expected)
    assert bad.size == 0, [(tuple(triples[i]), int(expected[i]), int(got[i])) for i in bad[:10]]


def test_need_event_dispatcher_matches_header(need_event_cases):
    """The jitted dispatcher called from Python with plain ints."""
    triples, expected = need_event_cases
    bad = [
        (e, n, o, x)
        for (e, n, o), x in zip(triples.tolist(), expected.tolist(), strict=True)
        if bool(need_event(e, n, o)) != bool(x)
    ]
    assert not bad, bad[:10]


def test_need_event_uint16_inputs_match_header(need_event_cases):
    """The values loaded from shared memory are u16: the same answers with uint16 inputs."""
    triples, expected = need_event_cases
    got = _need_event_all(triples.astype(np.uint16))
    bad = np.flatnonzero(got != expected)
    assert bad.size == 0, [(tuple(triples[i]), int(expected[i]), int(got[i])) for i in bad[:10]]


def test_need_event_unmasked_counters_match_header(need_event_cases):
    """Free-running counters (not masked to 16 bits) give the header's answer on their u16s."""
    triples, expected = need_event_cases
    rng = np.random.default_rng(7)
    wide = triples + (rng.integers(0, 1 << 16, size=triples.shape) << 16)
    got = _need_event_all(wide)
    assert np.array_equal(got, expected)


# =============================================================================================
# 3. vbus structs against a C declaration of AlacrityVM's published structs
# =============================================================================================
VBUS_DECLS = r"""
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef uint64_t aligned_u64 __attribute__((aligned(8)));

/* include/linux/shm_signal.h */
struct shm_signal_irq {
    uint8_t enabled;
    uint8_t pending;
    uint8_t dirty;
};

struct shm_signal_desc {
    uint32_t magic;
    uint32_t ver;
    struct shm_signal_irq irq[2];
};

/* include/linux/ioq.h */
struct ioq_ring_desc {
    uint64_t cookie;
    uint64_t ptr;
    uint64_t len;
    uint8_t valid;
    uint8_t sown;
};

struct ioq_ring_idx {
    uint32_t head;
    uint32_t tail;
    uint8_t full;
};

struct ioq_ring_head {
    uint32_t magic;
    uint32_t ver;
    struct shm_signal_desc signal;
    struct ioq_ring_idx idx[2];
    uint32_t count;
    struct ioq_ring_desc ring[];
};

/* the same head without its flexible array (what vbench's IOQ_RING_HEAD struct models) */
struct ioq_ring_head_fixed {
    uint32_t magic;
    uint32_t ver;
    struct shm_signal_desc signal;
    struct ioq_ring_idx idx[2];
    uint32_t count;
};

/* include/linux/venet.h */
struct venet_iov {
    uint32_t len;
    aligned_u64 ptr;
};

struct venet_sg {
    aligned_u64 cookie;
    uint32_t flags;
    uint32_t len;
    struct {
        uint16_t start;
        uint16_t offset;
    } csum;
    struct {
        uint8_t type;
        uint16_t hdrlen;
        uint16_t size;
    } gso;
    uint32_t count;
    struct venet_iov iov[1];
};

#define VSG_DESC_SIZE(count) \
    (sizeof(struct venet_sg) + sizeof(struct venet_iov) * ((count) - 1))

struct venet_event_header {
    uint32_t flags;
    uint32_t size;
    uint32_t id;
};

struct venet_event_txc {
    struct venet_event_header header;
    uint32_t txqid;
    aligned_u64 cookie;
};

/* include/linux/vbus_pci.h: the call() path */
struct vbus_pci_call_desc {
    uint32_t vector;
    uint32_t len;
    uint64_t datap;
};

struct vbus_pci_fastcall_desc {
    struct vbus_pci_call_desc call;
    uint32_t result;
};

struct vbus_pci_devicecall {
    uint64_t devh;
    uint32_t func;
    uint32_t len;
    uint32_t flags;
    uint64_t datap;
};

#define P(key, val) printf("%s %llu\n", key, (unsigned long long)(val))
"""

# vbench struct name -> the C type it is checked against
C_TYPES = {
    "shm_signal_irq": "struct shm_signal_irq",
    "shm_signal_desc": "struct shm_signal_desc",
    "ioq_ring_desc": "struct ioq_ring_desc",
    "ioq_ring_idx": "struct ioq_ring_idx",
    "ioq_ring_head": "struct ioq_ring_head_fixed",
    "venet_iov": "struct venet_iov",
    "venet_sg_csum": "__typeof__(((struct venet_sg *)0)->csum)",
    "venet_sg_gso": "__typeof__(((struct venet_sg *)0)->gso)",
    "venet_sg": "struct venet_sg",
    "vbus_pci_call_desc": "struct vbus_pci_call_desc",
    "vbus_pci_fastcall_desc": "struct vbus_pci_fastcall_desc",
    "vbus_pci_devicecall": "struct vbus_pci_devicecall",
    "venet_event_header": "struct venet_event_header",
    "venet_event_txc": "struct venet_event_txc",
}

_IRQ = [f"irq[{k}].{m}" for k in (0, 1) for m in ("enabled", "pending", "dirty")]
_IDX = [f"idx[{k}].{m}" for k in (0, 1) for m in ("head", "tail", "full")]
# every member of every struct, nested ones spelled out, as offsetof() designators
DEEP_PATHS: dict[str, list[str]] = {
    "shm_signal_irq": ["enabled", "pending", "dirty"],
    "shm_signal_desc": ["magic", "ver", "irq", *_IRQ],
    "ioq_ring_desc": ["cookie", "ptr", "len", "valid", "sown"],
    "ioq_ring_idx": ["head", "tail", "full"],
    "ioq_ring_head": [
        "magic",
        "ver",
        "signal",
        "signal.magic",
        "signal.ver",
        "signal.irq",
        *[f"signal.{p}" for p in _IRQ],
        "idx",
        *_IDX,
        "count",
    ],
    "venet_iov": ["len", "ptr"],
    "venet_sg": [
        "cookie",
        "flags",
        "len",
        "csum",
        "csum.start",
        "csum.offset",
        "gso",
        "gso.type",
        "gso.hdrlen",
        "gso.size",
        "count",
        "iov",
        "iov[0].len",
        "iov[0].ptr",
    ],
    "vbus_pci_call_desc": ["vector", "len", "datap"],
    "vbus_pci_fastcall_desc": ["call", "call.vector", "call.len", "call.datap", "result"],
    "vbus_pci_devicecall": ["devh", "func", "len", "flags", "datap"],
    "venet_event_header": ["flags", "size", "id"],
    "venet_event_txc": ["header", "header.flags", "header.size", "header.id", "txqid", "cookie"],
}
VSG_COUNTS = (1, 2, 18, 64)
IOQ_RING_PROBE = 64  # descriptors whose addresses the C program prints


def _vbus_c_source() -> str:
    body = []
    for name, ctype in C_TYPES.items():
        s = layout.STRUCTS[name]
        body.append(f'P("sizeof.{name}", sizeof({ctype}));')
        body.append(f'P("alignof.{name}", _Alignof({ctype}));')
        for f in s.fields:
            body.append(f'P("off.{name}.{f.name}", offsetof({ctype}, {f.name}));')
            body.append(f'P("msize.{name}.{f.name}", sizeof((({ctype} *)0)->{f.name}));')
    for name, paths in DEEP_PATHS.items():
        for p in paths:
            body.append(f'P("deep.{name}.{p}", offsetof(struct {name}, {p}));')
    body += [
        'P("sizeof.ioq_ring_head_flex", sizeof(struct ioq_ring_head));',
        'P("alignof.ioq_ring_head_flex", _Alignof(struct ioq_ring_head));',
        'P("off.ioq_ring_head_flex.ring", offsetof(struct ioq_ring_head, ring));',
    ]
    body += [f'P("vsg.{k}", VSG_DESC_SIZE({k}));' for k in VSG_COUNTS]
    body += [
        f"struct ioq_ring_head *h = aligned_alloc(64, sizeof(struct ioq_ring_head)"
        f" + {IOQ_RING_PROBE} * sizeof(struct ioq_ring_desc));",
        f"for (int i = 0; i < {IOQ_RING_PROBE}; i++)",
        '    printf("ioqring.%d %td\\n", i, (char *)&h->ring[i] - (char *)h);',
        "free(h);",
    ]
    return VBUS_DECLS + "\nint main(void) {\n    " + "\n    ".join(body) + "\n    return 0;\n}\n"


@pytest.fixture(scope="module")
def vbus_c(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    exe = _build(tmp_path_factory.mktemp("vbus"), "vbus", _vbus_c_source())
    return _keyed(_run(exe))


def _deep_offset(s: Struct, path: str) -> int:
    """Offset of ``a[k].b``-style designators through vbench's Struct.offset (dotted paths)."""
    plain = re.sub(r"\[\d+\]", "", path)
    if plain == path:
        return s.offset(path)
    head, _, rest = path.partition(".")
    m = re.fullmatch(r"(\w+)(?:\[(\d+)\])?", head)
    assert m is not None, path
    name, index = m.group(1), m.group(2)
    member = next(mm for mm in s.members if mm.name == name)
    off = s.offset(name)
    if index is not None:
        assert int(index) < member.count, path
        off += int(index) * member.elem_size
    if rest:
        assert isinstance(member.type, Struct), path
        off += _deep_offset(member.type, rest)
    return off


VBUS_STRUCTS = list(C_TYPES)


def test_virtio_blk_outhdr_matches_uapi_header(tmp_path):
    src = r"""
#include <stddef.h>
#include <stdio.h>
#include <linux/virtio_blk.h>
int main(void) {
    printf("size %zu\n", sizeof(struct virtio_blk_outhdr));
    printf("type %zu\n", offsetof(struct virtio_blk_outhdr, type));
    printf("ioprio %zu\n", offsetof(struct virtio_blk_outhdr, ioprio));
    printf("sector %zu\n", offsetof(struct virtio_blk_outhdr, sector));
    return 0;
}
"""
    c = _keyed(_run(_build(tmp_path, "blk", src)))
    s = layout.VIRTIO_BLK_OUTHDR
    assert c["size"] == s.size
    for f in ("type", "ioprio", "sector"):
        assert c[f] == s.offset(f), f


def test_vbus_c_declaration_matches_published_sizes(vbus_c):
    """The C declaration itself reproduces the sizes stated for the published structs."""
    c = vbus_c
    assert c["sizeof.shm_signal_desc"] == 16
    assert c["sizeof.ioq_ring_desc"] == 32
    assert c["sizeof.ioq_ring_idx"] == 12
    assert c["off.ioq_ring_head_flex.ring"] == 56
    assert c["sizeof.ioq_ring_head_flex"] == 56
    assert c["sizeof.venet_iov"] == 16
    assert c["sizeof.venet_sg"] == 48
    assert c["sizeof.vbus_pci_call_desc"] == 16
    assert c["sizeof.vbus_pci_fastcall_desc"] == 24
    assert c["sizeof.vbus_pci_devicecall"] == 32
    assert c["sizeof.venet_event_txc"] == 24  # device.c's EVQ_EVSIZE: the TXC pool's stride


def test_vbus_structs_all_checked():
    """Every vbus struct vbench defines is checked against C, every member deep-checked."""
    # checked against the Linux uapi headers instead (here and in tests/test_virtio_packed.py)
    uapi = {
        "vring_desc",
        "vring_used_elem",
        "vring_packed_desc",
        "vring_packed_desc_event",
        "virtio_blk_outhdr",
    }
    assert set(layout.STRUCTS) - uapi - set(C_TYPES) == set()
    for name, paths in DEEP_PATHS.items():
        top = {re.split(r"[.\[]", p)[0] for p in paths}
        assert top == {f.name for f in layout.STRUCTS[name].fields}, name


@pytest.mark.parametrize("name", VBUS_STRUCTS)
def test_vbus_struct_size_align_offsets(vbus_c, name):
    c = vbus_c
    s = layout.STRUCTS[name]
    assert s.size == c[f"sizeof.{name}"]
    assert s.align == c[f"alignof.{name}"]
    for f in s.fields:
        assert f.offset == c[f"off.{name}.{f.name}"], f.name
        assert s.offset(f.name) == c[f"off.{name}.{f.name}"], f.name
        assert f.size == c[f"msize.{name}.{f.name}"], f.name


@pytest.mark.parametrize(
    ("name", "path"), [(n, p) for n, paths in DEEP_PATHS.items() for p in paths]
)
def test_vbus_member_offsets(vbus_c, name, path):
    assert _deep_offset(layout.STRUCTS[name], path) == vbus_c[f"deep.{name}.{path}"]


def test_vbus_named_nested_offsets(vbus_c):
    """The spellings the models use: dotted paths and idx[k] = idx + k * sizeof(ioq_ring_idx)."""
    c = vbus_c
    assert layout.VENET_SG.offset("gso.hdrlen") == c["deep.venet_sg.gso.hdrlen"] == 22
    assert layout.VENET_SG.offset("csum.offset") == c["deep.venet_sg.csum.offset"]
    head, idx = layout.IOQ_RING_HEAD, layout.IOQ_RING_IDX
    for k in (0, 1):
        for m in ("head", "tail", "full"):
            want = c[f"deep.ioq_ring_head.idx[{k}].{m}"]
            assert head.offset("idx") + k * idx.size + idx.offset(m) == want
    irq, sig = layout.SHM_SIGNAL_IRQ, layout.SHM_SIGNAL_DESC
    for k, side in ((0, "NORTH"), (1, "SOUTH")):
        for m in ("enabled", "pending", "dirty"):
            got = sig.offset("irq") + getattr(layout, f"SHM_{side}") * irq.size + irq.offset(m)
            assert got == c[f"deep.shm_signal_desc.irq[{k}].{m}"]


def test_ioq_ring_offset_and_region_size(vbus_c):
    c = vbus_c
    assert layout.ioq_ring_offset() == c["off.ioq_ring_head_flex.ring"]
    for count in (1, 2, 64, 128, 256, 1024, layout.IOQ_MAX_COUNT):
        want = c["sizeof.ioq_ring_head_flex"] + count * c["sizeof.ioq_ring_desc"]
        assert layout.ioq_region_size(count) == want, count
        lay = layout.ioq_layout(count)
        assert lay.params["region_size"] == want
        ioq = lay.area("ioq")
        assert ioq.offset == 0
        assert ioq.size == want
        assert ioq.align == c["alignof.ioq_ring_head_flex"]
        assert ioq.at("ring") == c["off.ioq_ring_head_flex.ring"]
        for f in layout.IOQ_RING_HEAD.fields:
            assert ioq.at(f.name) == c[f"off.ioq_ring_head.{f.name}"]


@pytest.mark.parametrize("k", VSG_COUNTS)
def test_vsg_desc_size(vbus_c, k):
    assert layout.vsg_desc_size(k) == vbus_c[f"vsg.{k}"]
    lay = layout.ioq_layout(64, k)
    assert lay.params["sg_entry_size"] == vbus_c[f"vsg.{k}"]
    assert lay.area("sg_pool").size == 64 * vbus_c[f"vsg.{k}"]


def test_ioq_descriptor_straddles_iff_even(vbus_c):
    """Ring at 56, 32-byte descriptors: descriptor i spans two lines exactly when i is even."""
    lay = layout.ioq_layout(IOQ_RING_PROBE)
    ioq = lay.area("ioq")
    desc = layout.IOQ_RING_DESC
    for i in range(IOQ_RING_PROBE):
        off = ioq.at("ring") + i * desc.size
        assert off == vbus_c[f"ioqring.{i}"], i
        assert _straddles(off, desc.size) == (i % 2 == 0), i
    # the signal block and both indexes share line 0 with the start of ring[0]
    assert {_line(ioq.at(n)) for n in ("signal", "idx", "count", "ring")} == {0}


@pytest.mark.parametrize("n", [256, 1024])
@pytest.mark.parametrize("align", [64, 4096])
def test_split_ring_line_geometry(vring_c, n, align):
    _, rings = vring_c
    lay = layout.split_layout(n, align)
    avail, used = lay.area("avail"), lay.area("used")
    # areas start on cache lines (and agree with the header's vring_init)
    assert avail.offset % LINE == 0 and used.offset % LINE == 0
    assert (avail.offset, used.offset) == rings[n, align][2:4]

    # first avail line: flags, idx and ring[0..29]; ring[30] starts the next line
    first = _line(avail.offset)
    assert _line(avail.at("flags")) == _line(avail.at("idx")) == first
    in_first = [i for i in range(n) if _line(avail.at("ring") + 2 * i + 1) == first]
    assert in_first == list(range(30))
    assert _line(avail.at("ring") + 2 * 30) == first + 1

    # first used line: flags, idx, elements 0..6 and half of element 7
    es = layout.VRING_USED_ELEM.size
    first = _line(used.offset)
    whole = [i for i in range(n) if _line(used.at("ring") + es * i + es - 1) == first]
    assert whole == list(range(7))
    e7 = used.at("ring") + 7 * es
    assert _line(e7) == first and (first + 1) * LINE - e7 == es // 2
    # every 8th used element straddles, and only those
    straddlers = [i for i in range(n) if _straddles(used.at("ring") + es * i, es)]
    assert straddlers == list(range(7, n, 8))

    # used_event in the last avail line; avail_event in the last used line
    assert _line(avail.at("used_event")) == _line(avail.offset + avail.size - 1)
    assert _line(used.at("avail_event")) == _line(used.offset + used.size - 1)
    assert _line(avail.at("used_event")) == _line(rings[n, align][4])
    assert _line(used.at("avail_event")) == _line(rings[n, align][5])
    # ... which it shares with the tail of the last used element (the device writes both)
    assert _line(used.at("avail_event")) == _line(used.at("ring") + es * n - 1)


# =============================================================================================
# 4. The JSON form of `vbench layout`
# =============================================================================================
TOP_KEYS = {
    "model",
    "queue_size",
    "line_bytes",
    "total_bytes",
    "total_lines",
    "params",
    "areas",
    "structs",
}
AREA_KEYS = {"name", "offset", "size", "align", "writer", "what", "fields"}
FIELD_KEYS = {"name", "offset", "size", "type", "count"}

JSON_LAYOUTS = {
    "split-256": lambda: layout.split_layout(256),
    "split-256-a64-ind4": lambda: layout.split_layout(256, 64, indirect_segments=4),
    "split-1-a4": lambda: layout.split_layout(1, 4),
    "ioq-256-sg4": lambda: layout.ioq_layout(256, 4),
    "ioq-64": lambda: layout.ioq_layout(64),
    "ioq-2048-sg18": lambda: layout.ioq_layout(layout.IOQ_MAX_COUNT, 18),
}


@pytest.mark.parametrize("key", list(JSON_LAYOUTS))
def test_layout_json_consistent(key):
    lay = JSON_LAYOUTS[key]()
    d = json.loads(json.dumps(lay.as_dict()))  # JSON-serialisable, round-trips
    assert set(d) == TOP_KEYS
    assert d["line_bytes"] == LINE == 64
    assert d["queue_size"] == lay.queue_size
    assert d["model"] in ("virtio-split", "vbus-ioq")
    assert isinstance(d["params"], dict) and d["params"]

    ends = []
    names = [a["name"] for a in d["areas"]]
    assert len(names) == len(set(names)) and names
    for a in d["areas"]:
        assert set(a) == AREA_KEYS
        assert a["writer"] in ("driver", "device", "both")
        assert a["size"] > 0 and a["offset"] >= 0
        assert a["offset"] % a["align"] == 0, a["name"]
        lo, hi = a["offset"], a["offset"] + a["size"]
        ends.append(hi)
        assert a["fields"], a["name"]
        spans = []
        for f in a["fields"]:
            assert set(f) == FIELD_KEYS
            assert lo <= f["offset"] and f["offset"] + f["size"] <= hi, (a["name"], f["name"])
            if f["type"] in layout.SCALARS:
                elem = layout.SCALARS[f["type"]]
            else:
                assert f["type"] in d["structs"], f["type"]
                elem = d["structs"][f["type"]]["size"]
            # a struct array may be strided wider than the struct (indirect slots, venet_sg
            # entries of VSG_DESC_SIZE(segments)), never narrower
            assert f["size"] % f["count"] == 0, (a["name"], f["name"])
            stride = f["size"] // f["count"]
            assert stride == elem if f["type"] in layout.SCALARS else stride >= elem
            if a["name"] == "sg_pool":
                assert stride == d["params"]["sg_entry_size"]
                assert stride == layout.vsg_desc_size(d["params"]["sg_segments"])
            assert f["offset"] % min(elem, 8) == 0 or f["type"] not in layout.SCALARS
            spans.append((f["offset"], f["offset"] + f["size"], f["name"]))
        spans.sort()
        for (_, end0, n0), (start1, _, n1) in zip(spans, spans[1:], strict=False):
            assert end0 <= start1, f"{a['name']}: {n0} overlaps {n1}"
        assert max(e for _, e, _ in spans) == hi  # the area ends with its last field

    areas = sorted((a["offset"], a["offset"] + a["size"], a["name"]) for a in d["areas"])
    for (_, end0, n0), (start1, _, n1) in zip(areas, areas[1:], strict=False):
        assert end0 <= start1, f"area {n0} overlaps {n1}"
    assert d["total_bytes"] == max(ends)
    assert d["total_lines"] == -(-d["total_bytes"] // LINE)

    for name, s in d["structs"].items():
        ref = layout.STRUCTS[name]
        assert s["size"] == ref.size and s["align"] == ref.align
        assert [(f["name"], f["offset"], f["size"]) for f in s["fields"]] == [
            (f.name, f.offset, f.size) for f in ref.fields
        ]
        for f in s["fields"]:
            assert f["offset"] + f["size"] <= s["size"], (name, f["name"])


def test_layout_json_structs_closed():
    """Every struct a field (or a struct member) names is described in ``structs``."""
    d = layout.ioq_layout(256, 4).as_dict()
    assert {
        "ioq_ring_desc",
        "shm_signal_desc",
        "shm_signal_irq",
        "ioq_ring_idx",
        "venet_sg",
        "venet_iov",
        "venet_sg_csum",
        "venet_sg_gso",
    } <= set(d["structs"])
    for s in d["structs"].values():
        for f in s["fields"]:
            assert f["type"] in layout.SCALARS or f["type"] in d["structs"]
    d = layout.split_layout(256).as_dict()
    assert {"vring_desc", "vring_used_elem"} <= set(d["structs"])
