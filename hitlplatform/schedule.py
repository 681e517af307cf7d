"""The RQ cron schedule of the whole platform: ``python manage.py cron``.

Run one next to the workers (one per deployment is enough). Each sub-domain
declares its own entries; this module only gathers them, so the scheduler
reloading it registers each job exactly once.
"""

from datasets import schedule as exports
from reviews.judge import schedule as judge
from reviews.monitoring import schedule as monitoring
from reviews.quality import schedule as quality
from reviews.search import schedule as search
from reviews.webhooks import schedule as webhooks

for part in (judge, webhooks, monitoring, quality, search, exports):
    part.schedule_register()
