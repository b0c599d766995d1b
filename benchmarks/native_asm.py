"""What the native loops compile to: out-of-line calls and divisions, per loop.

Issue 14's item 2 asks what the generated code does that a C ring would not. Numba cannot
show the code of a loop it loaded from its cache, so this script compiles the loops afresh
into a throw-away cache (``NUMBA_CACHE_DIR`` set to a temporary folder before numba is
imported: a minute or two), runs one short native run of the label, and prints for
``driver_loop`` and ``device_loop``: the lines of assembly, each out-of-line call target
(the cold ones are exception and wrapper paths: ``PyErr_*``, ``numba_*``, the eventfd and
clock calls of the sleeping and deadline paths) and the division instructions::

    python benchmarks/native_asm.py virtio-split+in_order [--save DIR]

``--save`` writes each loop's assembly to ``DIR/<loop>.s`` to read the hot path by hand.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile
from pathlib import Path

_CALL = re.compile(r"\s+callq?\s+\*%(\w+)")
_LOAD = re.compile(r"movabsq\s+\$([A-Za-z_][\w$.]*),\s*%(\w+)")
_DIVISION = re.compile(r"\s+i?div[lqwb]?\s")


def call_targets(lines: list[str]) -> collections.Counter[str]:
    """Each indirect call's target: the symbol last loaded (movabsq) into the register it
    calls through, in program order (LLVM hoists a hot callee's address into a callee-saved
    register once and calls through it in the loop)."""
    loaded: dict[str, str] = {}
    targets: collections.Counter[str] = collections.Counter()
    for line in lines:
        load = _LOAD.search(line)
        if load:
            loaded[load.group(2)] = load.group(1)
            continue
        call = _CALL.match(line)
        if call:
            name = loaded.get(call.group(1), "(unknown)")
            name = re.sub(r"B\d.*$", "", name)  # numba's mangled signature
            targets[re.sub(r"^_ZN(\d+)", "", name)] += 1
    return targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("label", nargs="?", default="virtio-split", help="a native_bench label")
    parser.add_argument("--save", type=Path, help="write each loop's assembly here")
    args = parser.parse_args()
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="vbench-asm-")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from native_bench import native_figures

    from vbench.native import loops

    figure = native_figures(20_000, 1, (args.label,), ("poll",), 256, 32)[0]
    print(f"{args.label} polling b32: {figure.get('mreq_s_median', figure.get('error'))} M req/s")
    for loop in (loops.driver_loop, loops.device_loop):
        for signature in loop.signatures:
            lines = loop.inspect_asm(signature).splitlines()
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                (args.save / f"{loop.__name__}.s").write_text("\n".join(lines))
            divisions = sum(1 for line in lines if _DIVISION.match(line))
            print(f"{loop.__name__}: {len(lines)} lines, {divisions} divisions; calls:")
            for target, count in call_targets(lines).most_common():
                print(f"  {count:3d} {target[:100]}")


if __name__ == "__main__":
    main()
