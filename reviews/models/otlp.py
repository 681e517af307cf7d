from django.db import models

from reviews.models.projects import Project


class OtlpTraceSpan(models.Model):
    """An LLM or tool span of a trace whose item is not built yet (per-trace grouping).

    An exporter sends a trace's spans in as many requests as its batches fall:
    the spans wait here, one row per (project, trace, span), until the trace's
    root span arrives and the item is built from all of them; then they are
    deleted. Rows of a trace whose root never comes are dropped after
    ``HITL_OTLP_TRACE_HOLD_HOURS``.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    trace_id = models.CharField(max_length=32, help_text="Hex trace id.")
    span_id = models.CharField(max_length=16, help_text="Hex span id.")
    step = models.JSONField(help_text="The span as read by reviews.otlp.conventions.")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "trace_id", "span_id"], name="unique_otlp_trace_span"
            )
        ]
        indexes = [
            models.Index(fields=["project", "trace_id"], name="otlp_span_trace"),
            models.Index(fields=["created_at"], name="otlp_span_created"),
        ]

    def __str__(self) -> str:
        return f"span {self.span_id} of trace {self.trace_id}"
