#!/usr/bin/env python3
"""Measures this disk's fdatasync latency for small appends (what a WAL commit does),
alone, while another thread writes 64 MiB syncing every MiB, and while it writes without
syncing (dirty page cache, as a RocksDB flush leaves between sync_file_range calls). Evidence for the commit-latency tail in
docs/BENCHMARKS.md. Usage: python3 bench/fsync_probe.py [DIR]"""
import os, sys, tempfile, threading, time, json


def probe(path, n=400):
    lat = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for _ in range(n):
            os.write(fd, b"x" * 4096)
            t = time.perf_counter()
            os.fdatasync(fd)
            lat.append((time.perf_counter() - t) * 1e3)
    finally:
        os.close(fd)
    lat.sort()
    return {"p50_ms": round(lat[len(lat) // 2], 2), "p99_ms": round(lat[int(len(lat) * 0.99)], 2), "max_ms": round(lat[-1], 2)}


def flusher(path, stop, sync_every_mib=True):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    chunk = os.urandom(1 << 20)
    try:
        while not stop.is_set():
            os.lseek(fd, 0, os.SEEK_SET)
            for _ in range(64):
                os.write(fd, chunk)
                if sync_every_mib:
                    os.fdatasync(fd)
                if stop.is_set():
                    break
    finally:
        os.close(fd)


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else tempfile.gettempdir()
    with tempfile.TemporaryDirectory(dir=d) as tmp:
        quiet = probe(os.path.join(tmp, "wal-quiet"))
        stop = threading.Event()
        t = threading.Thread(target=flusher, args=(os.path.join(tmp, "sst"), stop))
        t.start()
        time.sleep(0.2)
        busy = probe(os.path.join(tmp, "wal-busy"))
        stop.set()
        t.join()
        # The same writer leaving its data dirty (page cache only, as writeback started
        # by sync_file_range leaves it): a metadata-changing sync may wait for it.
        stop = threading.Event()
        t = threading.Thread(target=flusher, args=(os.path.join(tmp, "sst2"), stop, False))
        t.start()
        time.sleep(0.2)
        dirty = probe(os.path.join(tmp, "wal-dirty"))
        stop.set()
        t.join()
    print(json.dumps({"fdatasync_4k_quiet": quiet, "fdatasync_4k_during_64MiB_synced_writes": busy, "fdatasync_4k_during_unsynced_writes": dirty}))


if __name__ == "__main__":
    main()
