from reviews.models.items import CheckResult, ItemStatus, ReviewItem
from reviews.models.judge import JudgeBackend, JudgeConfig, JudgeLabel, JudgeVerdict
from reviews.models.monitoring import (
    DeliveryStatus,
    DriftAlert,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
)
from reviews.models.projects import (
    DEFAULT_REASON_CODES,
    ApiKey,
    CheckKind,
    CheckRule,
    CheckSeverity,
    MemberRole,
    Project,
    ProjectMembership,
    ProjectMode,
)
from reviews.models.work import (
    Assignment,
    AssignmentState,
    CorrectionTriplet,
    Review,
    Severity,
    Verdict,
)

__all__ = [
    "DEFAULT_REASON_CODES",
    "ApiKey",
    "Assignment",
    "AssignmentState",
    "CheckKind",
    "CheckResult",
    "CheckRule",
    "CheckSeverity",
    "CorrectionTriplet",
    "DeliveryStatus",
    "DriftAlert",
    "ItemStatus",
    "JudgeBackend",
    "JudgeConfig",
    "JudgeLabel",
    "JudgeVerdict",
    "MemberRole",
    "Project",
    "ProjectMembership",
    "ProjectMode",
    "Review",
    "ReviewItem",
    "Severity",
    "Verdict",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEvent",
]
