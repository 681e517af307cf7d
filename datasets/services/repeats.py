"""The repeat keys a build has written, in 16 bytes a key.

De-duplication remembers the key of every written row until the build ends:
a million rows made a Python set of about 90 MB (a bytes object and a slot
per key), most of a worker's memory. ``SeenKeys`` holds them in sorted numpy
arrays instead, looked up and added a chunk at a time.
"""

import hashlib
from collections.abc import Sequence

import numpy as np

KEY_BYTES = 16


def _packed(keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """The keys as two uint64 columns (first and last 8 bytes); other lengths hashed."""
    fixed = keys
    if set(map(len, keys)) != {KEY_BYTES}:
        fixed = [
            key if len(key) == KEY_BYTES else hashlib.blake2b(key, digest_size=KEY_BYTES).digest()
            for key in keys
        ]
    pairs = np.frombuffer(b"".join(fixed), dtype=np.uint64).reshape(-1, 2)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


class SeenKeys:
    """A set of byte strings (repeat keys), 16 bytes a key.

    Keys of 16 bytes (a 128-bit digest) are kept as they are, others as their
    128-bit BLAKE2b digest. They live in a few levels, each sorted by its
    first 8 bytes; a chunk's keys become a new level, and two levels of about
    the same size are merged (so there are about log2(keys / chunk) of them).
    """

    def __init__(self) -> None:
        self.levels: list[tuple[np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return sum(len(high) for high, _low in self.levels)

    def contains(self, keys: Sequence[bytes | None]) -> list[bool]:
        """For each key, whether it was added before (``None`` never was)."""
        if not self.levels:
            return [False] * len(keys)
        present = keys if None not in keys else [key for key in keys if key is not None]
        if not present:
            return [False] * len(keys)
        high, low = _packed(present)
        # Sorted needles: each binary search starts where the last one ended.
        order = np.argsort(high)
        high, low = high[order], low[order]
        found = np.zeros(len(present), dtype=bool)
        for level_high, level_low in self.levels:
            start = np.searchsorted(level_high, high, side="left")
            end = np.searchsorted(level_high, high, side="right")
            span = end - start
            single = np.flatnonzero(span == 1)
            found[single] |= level_low[start[single]] == low[single]
            # The same first 8 bytes more than once in a level: look at each.
            for index in np.flatnonzero(span > 1).tolist():
                found[index] |= bool(np.any(level_low[start[index] : end[index]] == low[index]))
        unsorted = np.empty_like(found)
        unsorted[order] = found
        if present is keys:
            return unsorted.tolist()
        flags = iter(unsorted.tolist())
        return [False if key is None else next(flags) for key in keys]

    def add(self, keys: Sequence[bytes]) -> None:
        """Add these keys (none ``None``; a key already present may be added again)."""
        if not keys:
            return
        high, low = _packed(keys)
        order = np.argsort(high, kind="stable")
        self.levels.append((high[order], low[order]))
        while len(self.levels) > 1 and len(self.levels[-2][0]) <= 2 * len(self.levels[-1][0]):
            small_high, small_low = self.levels.pop()
            big_high, big_low = self.levels.pop()
            # Into the bigger level in place of a sort: at most one extra copy alive.
            at = np.searchsorted(big_high, small_high)
            merged_high = np.insert(big_high, at, small_high)
            del big_high
            merged_low = np.insert(big_low, at, small_low)
            del big_low
            self.levels.append((merged_high, merged_low))
