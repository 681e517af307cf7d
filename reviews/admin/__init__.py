"""The reviews app's admin: every page registered here, explicitly, in one place.

Page classes live with their sub-domain (``reviews.judge.admin``,
``reviews.monitoring.admin``, ``reviews.webhooks.admin``, the workspace's views
under the item admin) or in this package (projects, keys, items, accounts,
operations). Adjudication and datasets register their own pages.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django_rq.models import Dashboard

from reviews.admin.accounts import ReviewerUserAdmin
from reviews.admin.core import ApiKeyAdmin, ProjectAdmin, ReviewItemAdmin
from reviews.admin.operations import OperatorQueueAdmin
from reviews.imports.admin import ItemImportAdmin
from reviews.judge.admin import JudgeConfigAdmin, JudgeVerdictAdmin
from reviews.models import (
    ApiKey,
    ControlAnswer,
    DriftAlert,
    ItemImport,
    JudgeConfig,
    JudgeVerdict,
    MonitoringDashboard,
    Project,
    Quarantine,
    ReviewItem,
    WebhookDelivery,
)
from reviews.monitoring.admin import DriftAlertAdmin, MonitoringDashboardAdmin
from reviews.quality.admin import ControlAnswerAdmin, QuarantineAdmin
from reviews.webhooks.admin import WebhookDeliveryAdmin

admin.site.register(Project, ProjectAdmin)
admin.site.register(ApiKey, ApiKeyAdmin)
admin.site.register(ReviewItem, ReviewItemAdmin)
admin.site.register(JudgeConfig, JudgeConfigAdmin)
admin.site.register(JudgeVerdict, JudgeVerdictAdmin)
admin.site.register(MonitoringDashboard, MonitoringDashboardAdmin)
admin.site.register(DriftAlert, DriftAlertAdmin)
admin.site.register(WebhookDelivery, WebhookDeliveryAdmin)
admin.site.register(ItemImport, ItemImportAdmin)
admin.site.register(ControlAnswer, ControlAnswerAdmin)
admin.site.register(Quarantine, QuarantineAdmin)

# Replacing third-party registrations: reviewer accounts with their memberships,
# and django-rq's dashboard restricted to superusers.
for model, model_admin in ((get_user_model(), ReviewerUserAdmin), (Dashboard, OperatorQueueAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
