#!/usr/bin/env python3
"""Writes the committed seed corpus: a few small inputs per fuzz target.

Both targets build their structures from the input (records to encode,
segments to lay out and then damage), so plain bytes make good seeds: all
zeros gives the smallest well-formed case, and deterministic pseudo-random
bytes of a few sizes give larger, damaged ones. libFuzzer grows the corpus
from there; run `python3 fuzz/make_seeds.py` to write the seeds again.
"""
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


rng = random.Random(0x616E6E616C73)
for target in ("decode", "open_dir"):
    write(target, "zeros-64", bytes(64))
    write(target, "ones-256", bytes([1]) * 256)
    write(target, "counting-512", bytes(i % 251 for i in range(512)))
    for size in (200, 1000, 3000):
        write(target, "random-%d" % size, bytes(rng.getrandbits(8) for _ in range(size)))
