#!/usr/bin/env python3
"""Writes N random SHA-1 hashes in the Pwned Passwords download's form: HASH:COUNT lines
with CRLF, upper-case hex, counts skewed like the corpus' (mostly small). Deterministic
for a seed. Usage: gen-pwned.py N OUT [SEED]"""
import binascii
import random
import sys

n = int(sys.argv[1])
out = sys.argv[2]
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
# A fixed cycle of counts: 90 % between 1 and 16, the rest up to tens of millions.
counts = [b":%d\r\n" % (1 + (i * 7) % 16) for i in range(90)]
counts += [b":%d\r\n" % (17 + i * i * 3571) for i in range(10)]
CHUNK = 1 << 20
with open(out, "wb", buffering=1 << 22) as f:
    done = 0
    while done < n:
        m = min(CHUNK, n - done)
        hexed = binascii.hexlify(rng.randbytes(20 * m)).upper()
        f.write(b"".join(hexed[40 * i:40 * i + 40] + counts[(done + i) % 100] for i in range(m)))
        done += m
