"""Keyed pseudo-random permutations of ``[0, n)`` in O(1) memory.

A training run reads window ``i`` of an epoch at position ``perm(i)``. Storing a shuffled index
would cost 8 bytes per window (hundreds of MB per rank at SIMS scale) and a pass at every start;
instead :class:`Permutation` is a four-round Feistel network on the smallest even number of bits
that covers ``n``, with cycle walking (re-encrypting until the value falls below ``n``), which is
a bijection of ``[0, n)`` computed on demand (a few microseconds per index). Its round keys come
from a 64-bit mix (splitmix64's finaliser) of the key integers, so the permutation is a pure
function of ``(n, key)``, the same on every machine and in every process.
"""

from __future__ import annotations

_M64 = (1 << 64) - 1
_ROUNDS = 4


def mix64(x: int) -> int:
    """splitmix64's finaliser: a 64-bit integer hash with full avalanche."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def hash_ints(*values: int) -> int:
    """A 64-bit hash of a sequence of integers (order matters)."""
    h = 0x243F6A8885A308D3
    for v in values:
        h = mix64(h ^ (int(v) & _M64))
    return h


class Permutation:
    """A bijection of ``[0, n)`` keyed by ``key`` (integers); ``perm(i)`` for ``0 <= i < n``."""

    def __init__(self, n: int, *key: int):
        if n < 1:
            raise ValueError(f"permutation of {n} elements; expected n >= 1")
        self.n = int(n)
        bits = max(2, (self.n - 1).bit_length())
        bits += bits % 2
        self._half = bits // 2
        self._mask = (1 << self._half) - 1
        base = hash_ints(*key)
        self._keys = [mix64(base ^ r) for r in range(_ROUNDS)]

    def __call__(self, i: int) -> int:
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} outside [0, {self.n})")
        half, mask, x = self._half, self._mask, int(i)
        while True:
            left, right = x >> half, x & mask
            for k in self._keys:
                left, right = right, left ^ (mix64(right ^ k) & mask)
            x = (left << half) | right
            if x < self.n:
                return x
