from reviews.models.items import CheckResult, ItemStatus, ReviewItem
from reviews.models.judge import JudgeBackend, JudgeConfig, JudgeLabel, JudgeVerdict
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
]
