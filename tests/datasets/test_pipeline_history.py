"""Each streamed row gets its item's latest history id, whatever the chunking."""

import itertools
import random

from datasets.services.pipeline import HistoryIds


def _merged(rows, history):
    """The plain merge of two streams ordered by item id, one row at a time."""
    history = iter(history)
    current = next(history, None)
    out = []
    for row in rows:
        while current is not None and current[0] < row[0]:
            current = next(history, None)
        out.append((*row, current[1] if current is not None and current[0] == row[0] else None))
    return out


def test_history_ids_match_a_row_by_row_merge_for_any_chunking():
    rng = random.Random(17)
    for trial in range(3000):
        ids = sorted(rng.sample(range(200), k=rng.randint(0, 60)))
        repeats = [1, 1, 1, 2, 3] if trial % 2 else [1]  # triplets: several rows per item
        rows = [(item, f"row {n}") for item in ids for n in range(rng.choice(repeats))]
        with_history = set(rng.sample(range(200), k=rng.randint(0, 200)))
        if trial % 3 == 0:
            with_history |= set(ids)  # every item has history: the aligned case
        history = [(item, item * 10) for item in sorted(with_history)]
        chunk = rng.randint(1, 10)
        stream = iter(history)
        attached = HistoryIds(lambda n, s=stream: list(itertools.islice(s, n)), rng.randint(1, 7))
        got = []
        for start in range(0, len(rows), chunk):
            batch = rows[start : start + chunk]
            got.extend(attached.attach(batch))
        assert got == _merged(rows, history), (rows, history, chunk)


def test_one_row_per_item_with_history_is_attached_a_batch_at_a_time():
    rows = [(item, "row") for item in range(1, 1001)]
    stream = iter([(item, item * 10) for item in range(0, 1002)])
    attached = HistoryIds(lambda n: list(itertools.islice(stream, n)), 64)
    looked_up = []
    latest = attached._latest
    attached._latest = lambda item_id: looked_up.append(item_id) or latest(item_id)
    got = [
        row for start in range(0, 1000, 100) for row in attached.attach(rows[start : start + 100])
    ]
    assert got == [(item, "row", item * 10) for item in range(1, 1001)]
    assert looked_up == list(range(1, 1001, 100))  # once per batch, to skip what came before
