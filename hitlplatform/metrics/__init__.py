"""Prometheus metrics: ``instruments`` (event counters and histograms that web
processes and workers record) and ``collector`` (gauges read from the database
at scrape time); ``views`` serves both at ``/metrics``.

Two kinds, because a deployment spans machines. Whatever must be one global
figure (items by status, queue depth and age, judge and webhook backlogs,
decisions in the last minute, exports by status) is read from the database on
each scrape, so any web process answers it for the whole deployment. Events
(judge calls and errors, webhook attempts, export builds) are counted where
they happen; with ``PROMETHEUS_MULTIPROC_DIR`` the processes of one machine
(gunicorn workers and RQ workers alike) share a directory and one scrape of
that machine sums them. README, "Metrics", says how to scrape several machines.
"""
