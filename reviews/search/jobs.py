"""RQ jobs of the item search. Thin: they call a service and report a count."""

from reviews.services.search import search_index_pending, search_index_queued_run


def search_index_job() -> int:
    """Index the items queued for the search (enqueued after the writes that queue them)."""
    return search_index_queued_run()


def search_index_sweep_job() -> int:
    """Index whatever is still pending (cron, every minute): a lost job's items."""
    return search_index_pending()
