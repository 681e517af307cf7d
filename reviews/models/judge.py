from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from simple_history.models import HistoricalRecords

from reviews.models.items import ReviewItem
from reviews.models.projects import Project


class JudgeBackend(models.TextChoices):
    OPENAI = "openai", "OpenAI-compatible chat completions (OpenAI, vLLM, Ollama, TGI, ...)"
    ANTHROPIC = "anthropic", "Anthropic messages"


class ResponseFormat(models.TextChoices):
    """How an OpenAI-compatible server is asked for JSON (Anthropic always uses a tool)."""

    JSON_SCHEMA = "json_schema", "Structured output (JSON Schema): OpenAI, vLLM, Ollama, llama.cpp"
    JSON_OBJECT = "json_object", "JSON mode: any JSON object, checked against the schema after"
    PROMPT = "prompt", "Instructions only: for servers without JSON mode"


class JudgeConfig(models.Model):
    """A project's tier-2 LLM judge: which model grades outputs against which rubric."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="judge_config")
    enabled = models.BooleanField(default=True)
    backend = models.CharField(
        max_length=20, choices=JudgeBackend.choices, default=JudgeBackend.OPENAI
    )
    base_url = models.URLField(
        blank=True, help_text="Endpoint base URL, e.g. http://127.0.0.1:8001/v1 for vLLM."
    )
    model = models.CharField(max_length=200, help_text="The judge model's name.")
    api_key_encrypted = models.TextField(
        blank=True, editable=False, help_text="The API key, encrypted at rest; never shown."
    )
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        help_text="Or: the name of an environment variable that holds the API key.",
    )
    rubric = models.TextField(help_text="What the judge checks outputs against.")
    rubric_version = models.PositiveIntegerField(
        default=1, editable=False, help_text="Bumped whenever the rubric text changes."
    )
    threshold = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="A score below this counts as a flag.",
    )
    timeout_seconds = models.FloatField(default=30.0, validators=[MinValueValidator(0.1)])
    max_concurrency = models.PositiveIntegerField(
        default=50, help_text="Judge requests in flight at once per worker job."
    )
    max_retries = models.PositiveSmallIntegerField(
        default=3,
        validators=[MaxValueValidator(10)],
        help_text="Retries (exponential backoff) after a timeout, 429 or 5xx before the item "
        "goes to a human with a judge error.",
    )
    response_format = models.CharField(
        max_length=20,
        choices=ResponseFormat.choices,
        default=ResponseFormat.JSON_SCHEMA,
        help_text="OpenAI-compatible backends: how the reply is constrained to the verdict JSON.",
    )
    max_tokens = models.PositiveIntegerField(
        default=1024,
        validators=[MinValueValidator(64)],
        help_text="Upper bound on the judge's reply length (tokens).",
    )
    history = HistoricalRecords(excluded_fields=["api_key_encrypted"])

    class Meta:
        verbose_name = "judge configuration"

    def __str__(self) -> str:
        return f"Judge for {self.project} ({self.model})"

    @property
    def has_stored_api_key(self) -> bool:
        return bool(self.api_key_encrypted)


class JudgeLabel(models.TextChoices):
    PASS = "pass", "Pass"
    FLAG = "flag", "Flag"
    FAIL = "fail", "Fail"
    ERROR = "error", "Error (counts as a flag)"


class JudgeVerdict(models.Model):
    """One judge grading of one item. Written once, never changed."""

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="judge_verdicts")
    backend = models.CharField(max_length=20, choices=JudgeBackend.choices)
    model = models.CharField(max_length=200)
    rubric_version = models.PositiveIntegerField()
    score = models.FloatField(null=True, blank=True)
    label = models.CharField(max_length=10, choices=JudgeLabel.choices)
    rationale = models.TextField(blank=True)
    error_categories = models.JSONField(default=list, blank=True)
    flagged = models.BooleanField(
        default=True,
        help_text="Sent the item to a human: label flag/fail/error, or a score below the "
        "threshold in force when it was judged.",
    )
    threshold = models.FloatField(null=True, blank=True, help_text="The threshold applied.")
    error = models.TextField(blank=True, help_text="Why the judge call failed, if it did.")
    raw_reply = models.TextField(
        blank=True, help_text="The judge's reply when it could not be parsed (untrusted text)."
    )
    attempts = models.PositiveSmallIntegerField(
        default=1, help_text="Calls made, retries included."
    )
    latency_ms = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # An item passes through pending_judge once, so it is judged once; the
            # constraint backs the row-lock idempotency of the judge job.
            models.UniqueConstraint(fields=["item"], name="one_judge_verdict_per_item")
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.score}) on {self.item_id}"
