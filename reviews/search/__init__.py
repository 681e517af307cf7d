"""The item search's jobs and cron entry; the service is ``reviews.services.search``."""
