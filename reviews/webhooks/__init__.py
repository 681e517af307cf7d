"""Webhook deliveries: signed POSTs of final results from the outbox, retries, the sweep.

The outbox rows themselves are written by the lifecycle, in the transaction
that makes an item final (``reviews.services.outbox``); this package sends them.
"""
