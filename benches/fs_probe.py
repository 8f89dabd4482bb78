#!/usr/bin/env python3
"""Same-moment fdatasync probe across file systems: one small durable write
(pwrite + fdatasync) per target in turn, rotating the order every round, so
every target sees the same moments of a shared disk. Targets per file system:
  zeroed   - into a 64 MiB file written with zeros and synced first (annals' segments)
  falloc   - into a 64 MiB file made with fallocate (unwritten extents)
  grow     - appending to a file that grows with each write
  zeroed34k- 34,424-byte writes (a batch of 100) into a zero-written file
  nocow    - btrfs only: as zeroed, in a file made chattr +C (no copy-on-write) first
Usage: fs_probe.py ROUNDS name=dir ... (a name "btrfs" adds the nocow target).
Prints the median and p99 of each target and its extent count (filefrag)
afterwards; PERFORMANCE.md has a run.
"""
import os
import statistics
import subprocess
import sys
import time

rounds = int(sys.argv[1])
SIZE = 64 << 20
targets = []
for arg in sys.argv[2:]:
    name, d = arg.split("=", 1)
    os.makedirs(d, exist_ok=True)
    modes = [("zeroed", 368), ("falloc", 368), ("grow", 368), ("zeroed34k", 34424)]
    if name == "btrfs":
        modes.append(("nocow", 368))
    for mode, wlen in modes:
        p = os.path.join(d, f"probe-{mode}")
        if os.path.exists(p):
            os.unlink(p)
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o600)
        if mode == "nocow":
            # chattr +C works only while the file is empty.
            subprocess.run(["chattr", "+C", p], check=True)
        if mode.startswith("zeroed") or mode == "nocow":
            z = bytes(1 << 20)
            for at in range(0, SIZE, len(z)):
                os.pwrite(fd, z, at)
            os.fsync(fd)
        elif mode == "falloc":
            os.posix_fallocate(fd, 0, SIZE)
            os.fsync(fd)
        dfd = os.open(d, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)
        targets.append({"name": f"{name} {mode}", "fd": fd, "len": wlen, "at": 0, "t": [], "path": p})
buf = os.urandom(34424)
for r in range(rounds):
    k = r % len(targets)
    for t in targets[k:] + targets[:k]:
        if t["at"] + t["len"] > SIZE:
            t["at"] = 0
        s = time.perf_counter_ns()
        os.pwrite(t["fd"], buf[: t["len"]], t["at"])
        os.fdatasync(t["fd"])
        t["t"].append(time.perf_counter_ns() - s)
        t["at"] += t["len"]
for t in targets:
    v = sorted(t["t"])
    p50 = statistics.median(v) / 1000
    p99 = v[int(len(v) * 0.99) - 1] / 1000
    print(f"{t['name']:22} n={len(v)} p50={p50:8.1f} us p99={p99:8.1f} us")
    os.close(t["fd"])
    frag = subprocess.run(["filefrag", t["path"]], capture_output=True, text=True).stdout.strip()
    print(f"    {frag}")
    os.unlink(t["path"])
