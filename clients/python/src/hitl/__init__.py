"""Python client for the HITL Review Platform (no Django needed).

from hitl import Client, Item
client = Client()                     # HITL_URL, HITL_API_KEY
result = client.submit(Item(...))
final = client.wait_for_decision(result.id)
"""

from hitl._core import DEFAULT_BATCH, RetryPolicy
from hitl.client import AsyncClient, AsyncExports, Client, Exports
from hitl.errors import (
    APIError,
    AuthError,
    ChecksumMismatch,
    ConflictError,
    ConnectionFailed,
    ExportFailed,
    HITLError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    StaleWebhook,
    ValidationError,
    WaitTimeout,
    WebhookVerificationError,
)
from hitl.models import (
    Agreement,
    Audit,
    BatchResult,
    Candidate,
    CheckResult,
    Comparison,
    ContextDocument,
    Decision,
    Export,
    ExportFile,
    Item,
    ItemResult,
    JudgeVerdict,
    Message,
    SubmittedItem,
)
from hitl.webhooks import verify_webhook

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_BATCH",
    "APIError",
    "Agreement",
    "AsyncClient",
    "AsyncExports",
    "Audit",
    "AuthError",
    "BatchResult",
    "Candidate",
    "CheckResult",
    "ChecksumMismatch",
    "Client",
    "Comparison",
    "ConflictError",
    "ConnectionFailed",
    "ContextDocument",
    "Decision",
    "Export",
    "ExportFailed",
    "ExportFile",
    "Exports",
    "HITLError",
    "Item",
    "ItemResult",
    "JudgeVerdict",
    "Message",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "StaleWebhook",
    "SubmittedItem",
    "ValidationError",
    "WaitTimeout",
    "WebhookVerificationError",
    "verify_webhook",
]
