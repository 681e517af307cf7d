"""The RQ worker behind every ``manage.py rqworker`` (``RQ["WORKER_CLASS"]``).

RQ runs scheduled jobs (judge and webhook retries) only from a worker started
with ``--with-scheduler``, and out of the box a scheduler that dies is noticed
only by the worker's ten-minute maintenance: a worker started without the flag,
a scheduler child killed by a Redis outage, or a second worker waiting on the
lock of a killed one left retries waiting for many minutes. This worker:

- always runs the scheduler, with or without the flag (``--burst`` enqueues the
  jobs due at start, as RQ does);
- every ``HITL_SCHEDULER_CHECK_SECONDS`` (idle or busy) checks that its
  scheduler process is alive and, if not, takes the scheduler lock and starts
  one: after a Redis outage, or when the worker holding the lock has exited;
- holds the lock on a ``HITL_SCHEDULER_LOCK_SECONDS`` lease (RQ: 61 s), so a
  killed holder blocks the others that long at most; a scheduler whose worker
  was killed under it stops and releases the lock at once;
- heartbeats a running job every ``HITL_WORKER_HEARTBEAT_SECONDS`` and lets the
  job's entry in the started registry lapse after three missed beats, so the
  judge sweep sees the items of a killed worker's job as abandoned quickly.

Any number of these may run on any number of machines: one holds the
scheduler lock of each queue at a time.

:class:`CronScheduler` runs the platform's sweeps (``manage.py cron``) and,
unlike RQ's, survives a Redis outage.
"""

import os
import time

import redis
from django.conf import settings
from django_rq.cron import DjangoCronScheduler
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.exceptions import StopRequested
from rq.scheduler import RQScheduler
from rq.worker import Worker as RQWorker


class Scheduler(RQScheduler):
    """RQ's scheduler on a short lock lease, stopping when its worker is gone."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Built in the worker's main process; the scheduler process is its child.
        self.worker_pid = os.getpid()

    def _shorten_leases(self) -> None:
        # RQ sets the lease to interval + 60 s; shorten it to ours right after.
        with self.connection.pipeline() as pipeline:
            for name in self._acquired_locks:
                pipeline.expire(self.get_locking_key(name), settings.HITL_SCHEDULER_LOCK_SECONDS)
            pipeline.execute()

    def acquire_locks(self, auto_start: bool = False):
        locks = super().acquire_locks(auto_start=auto_start)
        self._shorten_leases()
        return locks

    def heartbeat(self) -> None:
        if os.getppid() != self.worker_pid:
            # The worker was killed (SIGKILL leaves its children running): an orphan
            # scheduler would hold the lock for ever. Stop; work() releases the locks.
            self.log.warning("Scheduler: worker %s is gone, stopping", self.worker_pid)
            self.request_stop()
            return
        super().heartbeat()
        self._shorten_leases()


class Worker(RQWorker):
    """An RQ worker that always runs the scheduler and restarts it when it dies."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("job_monitoring_interval", settings.HITL_WORKER_HEARTBEAT_SECONDS)
        super().__init__(*args, **kwargs)
        self._keep_scheduler = False
        self._scheduler_checked = 0.0

    def work(self, burst: bool = False, **kwargs) -> bool:
        kwargs["with_scheduler"] = True
        self._keep_scheduler = not burst
        return super().work(burst=burst, **kwargs)

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        # RQ's own, with our scheduler class (RQ has no setting for it).
        self.scheduler = Scheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler.acquire_locks()
        if self.scheduler.acquired_locks:
            if burst:
                try:
                    self.scheduler.register_birth()
                    self.scheduler.enqueue_scheduled_jobs()
                finally:
                    self.scheduler.release_locks()
                    self.scheduler.register_death()
            else:
                self.scheduler.start()
        self._scheduler_checked = time.monotonic()

    @property
    def dequeue_timeout(self) -> int:
        # Wake up from the blocking pop often enough to look after the scheduler.
        return max(1, min(super().dequeue_timeout, settings.HITL_SCHEDULER_CHECK_SECONDS))

    def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:
        # RQ: the next beat + 60 s. Ours: three beats, so a killed job lapses soon.
        interval = self.job_monitoring_interval
        if job.timeout and job.timeout > 0:
            interval = min(job.timeout - working_time, interval)
        return int(max(interval, 1)) + 2 * self.job_monitoring_interval

    def heartbeat(self, timeout=None, pipeline=None) -> None:
        super().heartbeat(timeout, pipeline)
        if pipeline is None:
            self.scheduler_keep_alive()

    def maintain_heartbeats(self, job, execution) -> None:
        super().maintain_heartbeats(job, execution)
        self.scheduler_keep_alive()

    def scheduler_keep_alive(self) -> None:
        """Start a scheduler when this worker runs none and the lock is free (or ours)."""
        if self.is_horse or self.scheduler is None or not self._keep_scheduler:
            return
        now = time.monotonic()
        if now - self._scheduler_checked < settings.HITL_SCHEDULER_CHECK_SECONDS:
            return
        self._scheduler_checked = now
        process = self.scheduler._process
        if process is not None and process.is_alive():
            return
        try:
            if self.scheduler.acquire_locks(auto_start=True):
                self.log.info("Worker %s: scheduler (re)started", self.name)
        except redis.RedisError as exc:
            self.log.warning("Worker %s: cannot start the scheduler yet: %s", self.name, exc)


class CronScheduler(DjangoCronScheduler):
    """RQ's cron scheduler (the sweeps of ``hitlplatform.schedule``), waiting out
    Redis outages: RQ's own exits on the first connection error, leaving the
    sweeps that recover from the outage unscheduled until someone restarts it."""

    def start(self) -> None:
        delay = 1.0
        while True:
            try:
                super().start()
                return
            except redis.RedisError as exc:
                self.log.warning("Cron: Redis unavailable (%s), retry in %.0f s", exc, delay)
            try:
                time.sleep(delay)
            except StopRequested:
                return
            delay = min(delay * 2, 30.0)
