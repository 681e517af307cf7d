"""The webhook delivery log in the admin: every delivery, every attempt, and a re-send."""

import json

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html

from reviews.access import Capability
from reviews.access.admin import ProjectScopedAdminMixin
from reviews.models import WebhookAttempt, WebhookDelivery
from reviews.webhooks.services import webhook_delivery_resend


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = [
        "attempted_at",
        "url",
        "status_code",
        "error",
        "duration_ms",
        "response_excerpt",
        "triggered_by",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class WebhookDeliveryAdmin(ProjectScopedAdminMixin, admin.ModelAdmin):
    """The delivery log of the projects the user administers: every attempt, and a re-send."""

    view_capability = Capability.ADMINISTER
    change_capability = None

    list_display = [
        "id",
        "project",
        "item_link",
        "event",
        "status",
        "attempts",
        "last_status_code",
        "created_at",
        "next_attempt_at",
        "delivered_at",
    ]
    list_filter = ["status", "event", "project"]
    list_select_related = ["project", "item"]
    search_fields = ["=id", "item__external_id"]
    show_full_result_count = False
    date_hierarchy = "created_at"
    actions = ["resend"]
    inlines = [WebhookAttemptInline]
    fields = [
        "id",
        "project",
        "item_link",
        "event",
        "status",
        "attempts",
        "next_attempt_at",
        "last_attempt_at",
        "last_status_code",
        "last_error",
        "delivered_at",
        "created_at",
        "payload_pretty",
    ]
    readonly_fields = fields
    change_form_template = "admin/reviews/webhookdelivery/change_form.html"

    @admin.display(description="item")
    def item_link(self, delivery: WebhookDelivery) -> str:
        url = reverse("admin:reviews_reviewitem_change", args=[delivery.item_id])
        return format_html('<a href="{}">{}</a>', url, delivery.item.external_id)

    @admin.display(description="payload")
    def payload_pretty(self, delivery: WebhookDelivery) -> str:
        text = json.dumps(delivery.payload, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html("<pre>{}</pre>", text)  # styled in static/reviews/webhooks.css

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        return [
            path(
                "<uuid:pk>/resend/",
                self.admin_site.admin_view(self.resend_view),
                name="reviews_webhookdelivery_resend",
            ),
            *super().get_urls(),
        ]

    def resend_view(self, request: HttpRequest, pk) -> HttpResponse:
        if request.method != "POST":
            raise PermissionDenied
        delivery = get_object_or_404(self.get_queryset(request), pk=pk)
        webhook_delivery_resend(delivery=delivery, user=request.user)
        self.message_user(request, "Delivery queued again.")
        return redirect("admin:reviews_webhookdelivery_change", delivery.pk)

    @admin.action(description="Re-send selected deliveries")
    def resend(self, request, queryset):
        count = 0
        for delivery in queryset:
            webhook_delivery_resend(delivery=delivery, user=request.user)
            count += 1
        self.message_user(request, f"{count} deliveries queued again.")
