"""RQ queues: real Redis queues when REDIS_URL is set, inline jobs otherwise."""

import functools
import logging

import django_rq
import fakeredis
from django.conf import settings
from django.db import transaction
from redis.exceptions import RedisError
from rq import Queue

from hitlplatform.degraded import degraded_record

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

    If Redis is down the error is logged and counted (``hitlplatform.degraded``),
    not raised: the database already holds the work, and the sweeps enqueue it
    once Redis is back. The job never runs inline instead.
    """

    def send() -> None:
        try:
            get_queue(queue_name).enqueue(func, *args, **kwargs)
        except RedisError as exc:
            logger.warning("Could not enqueue %s on %s: %s", func, queue_name, exc)
            degraded_record(
                kind="enqueue",
                message=f"jobs not enqueued ({exc}); the sweeps enqueue them once Redis is back",
            )

    transaction.on_commit(send)
