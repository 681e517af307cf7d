"""RQ queues: real Redis queues when REDIS_URL is set, inline jobs otherwise."""

import functools
import logging

import django_rq
import fakeredis
from django.conf import settings
from django.db import transaction
from rq import Queue

logger = logging.getLogger(__name__)


@functools.cache
def _inline_connection():
    # Inline queues run each job at enqueue time; RQ still wants somewhere to
    # keep the job record, and the embedded default has no Redis server.
    return fakeredis.FakeStrictRedis()


def get_queue(name: str) -> Queue:
    if settings.RQ_INLINE:
        return django_rq.get_queue(name, is_async=False, connection=_inline_connection())
    return django_rq.get_queue(name)


def enqueue_on_commit(queue_name: str, func, *args, **kwargs) -> None:
    """Enqueue ``func`` once the current transaction commits (at once outside one).

    If Redis is down the error is logged, not raised: the database already
    holds the work, and the reconciliation sweep enqueues it again later.
    """

    def send() -> None:
        try:
            get_queue(queue_name).enqueue(func, *args, **kwargs)
        except Exception:
            logger.exception("Could not enqueue %s on %s", func, queue_name)

    transaction.on_commit(send)
