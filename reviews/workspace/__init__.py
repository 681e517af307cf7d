"""Tier 3, the reviewer workspace: claims with leases, review submit, the queue, the timeline.

Sits above adjudication (a second blind review that disagrees opens a case)
and may call it; the core never imports it.
"""
