"""The repeat keys of a build: a compact set that answers as a Python set does."""

import hashlib
import random

from datasets.services.repeats import SeenKeys


def test_seen_keys_answer_as_a_set_does_chunk_after_chunk():
    rng = random.Random(17)
    digests = [hashlib.blake2b(str(n).encode(), digest_size=16).digest() for n in range(3000)]
    # Keys sharing their first 8 bytes, and keys of other lengths (hashed inside).
    twins = [digests[0][:8] + bytes([n]) * 8 for n in range(5)]
    others = [b"", b"short", b"x" * 40]
    pool = digests + twins + others
    seen, expected = SeenKeys(), set()
    for _ in range(120):
        chunk = [
            rng.choice(pool) if rng.random() > 0.05 else None for _ in range(rng.randint(0, 90))
        ]
        assert seen.contains(chunk) == [key is not None and key in expected for key in chunk]
        written = [key for key in chunk if key is not None and rng.random() < 0.5]
        seen.add(written)
        expected.update(written)
    assert len(seen.levels) < 12
    assert all(seen.contains(sorted(expected)))
    assert seen.contains([None, b"never added"]) == [False, False]
