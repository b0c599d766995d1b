"""numba's on-disk cache under parallel compiles (vbench.jit.lock_cache_saves).

Every model's engine is an overload of one cached function, and a parallel warm-up saves them
from several processes. numba names a new overload's data file from the index it has just read,
so unserialised saves can give two overloads one file. These tests drive numba's own cache-file
class (not a copy of it) with the lock installed."""

from __future__ import annotations

import fcntl
import os
import threading
import time

from numba.core import caching

from vbench.jit import lock_cache_saves


def _cache_file(folder) -> caching.IndexDataCacheFile:
    lock_cache_saves()
    return caching.IndexDataCacheFile(str(folder), "mod.fn-1.py311", ("stamp", 1))


def test_a_save_waits_for_the_lock_beside_the_index(tmp_path):
    f = _cache_file(tmp_path)
    fd = os.open(f._index_path + ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process saving
    t = threading.Thread(target=f.save, args=(("sig", 1), b"one"))
    t.start()
    time.sleep(0.3)
    assert t.is_alive() and not os.path.exists(f._index_path)
    os.close(fd)
    t.join(10)
    assert not t.is_alive() and f.load(("sig", 1)) == b"one"


def test_concurrent_saves_of_different_overloads_keep_each_its_own_data(tmp_path):
    keys = [("sig", i) for i in range(40)]
    files = [_cache_file(tmp_path) for _ in range(4)]  # one per "process" (own file handles)

    def saver(k: int) -> None:
        for key in keys[k::4]:
            files[k].save(key, repr(key).encode())

    threads = [threading.Thread(target=saver, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    check = _cache_file(tmp_path)
    assert [check.load(key) for key in keys] == [repr(key).encode() for key in keys]


def test_installing_the_lock_twice_wraps_once():
    lock_cache_saves()
    once = caching.IndexDataCacheFile.save
    lock_cache_saves()
    assert caching.IndexDataCacheFile.save is once and once._vbench_locked
