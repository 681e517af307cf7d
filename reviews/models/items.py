from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchQuery, SearchVectorField
from django.db import connection, models
from django.db.models import Exists, F, Func, OuterRef, Q, Value
from django.db.models.functions import Coalesce
from simple_history.models import HistoricalRecords

from reviews.models.projects import CheckKind, CheckRule, CheckSeverity, Project


class ItemStatus(models.TextChoices):
    PENDING_CHECKS = "pending_checks", "Pending checks"
    PENDING_JUDGE = "pending_judge", "Pending judge"
    PENDING_REVIEW = "pending_review", "Pending review"
    IN_REVIEW = "in_review", "In review"
    IN_ADJUDICATION = "in_adjudication", "In adjudication"
    APPROVED = "approved", "Approved"
    CORRECTED = "corrected", "Corrected"
    REJECTED = "rejected", "Rejected"
    AUTO_APPROVED = "auto_approved", "Auto-approved"
    AUTO_REJECTED = "auto_rejected", "Auto-rejected"


FINAL_STATUSES = frozenset(
    {
        ItemStatus.APPROVED,
        ItemStatus.CORRECTED,
        ItemStatus.REJECTED,
        ItemStatus.AUTO_APPROVED,
        ItemStatus.AUTO_REJECTED,
    }
)

# Queue priority bands: risk first, then ordinary review, then audit samples.
PRIORITY_RISK = 200
PRIORITY_NORMAL = 100
PRIORITY_AUDIT = 0

# The search text: the reviewers' notes go first, so a long output never pushes them
# past the indexed prefix (PostgreSQL's tsvector holds at most 1 MB).
SEARCH_CONFIG = "english"
SEARCH_PREFIX_CHARS = 100_000
SEARCH_FIELDS = ("review_notes", "prompt", "output")


class SearchDocument(Func):
    """The item's full-text document: ``to_tsvector`` of notes, prompt and output.

    Literal SQL (no parameters): the indexer (``search_index_pending``) and the
    migration's backfill compute ``ItemSearch.document`` with it, over the
    columns of ``reviews_reviewitem`` (``prefix`` names the table's alias).
    """

    template = (
        f"to_tsvector('{SEARCH_CONFIG}'::regconfig, left(%(expressions)s, {SEARCH_PREFIX_CHARS}))"
    )
    arg_joiner = " || ' ' || "
    output_field = SearchVectorField()

    def __init__(self, **extra):
        super().__init__(*SEARCH_FIELDS, **extra)

    @staticmethod
    def sql(prefix: str = "") -> str:
        """The same expression as raw SQL over ``prefix.column`` (for INSERT ... SELECT)."""
        columns = " || ' ' || ".join(f"{prefix}{name}" for name in SEARCH_FIELDS)
        return f"to_tsvector('{SEARCH_CONFIG}'::regconfig, left({columns}, {SEARCH_PREFIX_CHARS}))"


class ItemKind(models.TextChoices):
    SINGLE = "single", "Single output"
    COMPARISON = "comparison", "Comparison of 2-4 candidates"


class ReviewItemQuerySet(models.QuerySet):
    def for_clients(self) -> "ReviewItemQuerySet":
        """Items a client may hear of: every item but the controls (reviews/quality/)."""
        return self.filter(is_control=False)

    def in_queue(self) -> "ReviewItemQuerySet":
        """Items waiting for a human, in queue order (risk, lowest confidence, oldest)."""
        return self.filter(in_queue=True).order_by(*ReviewItem.QUEUE_ORDER)

    def search(self, text: str, *, or_exact: Q | None = None) -> "ReviewItemQuerySet":
        """Items whose prompt, output or review notes hold every word of ``text``.

        PostgreSQL: full-text search (English stemming: "doses" finds "dose")
        on ``ItemSearch.document`` and its GIN index. The documents are built
        off the ingest path by a job (``search_index_pending``), so an item's
        text is found seconds after it is stored; ``or_exact`` matches at once.
        Elsewhere (the SQLite
        demo): each word must appear, case-insensitively, in one of the fields.
        ``or_exact`` (used for a single word) adds the items it matches, e.g.
        an exact external id: give each condition an index of its own, or the
        OR turns into a scan.
        """
        words = text.split()
        if not words:
            return self
        exact = or_exact if or_exact is not None and len(words) == 1 else Q()
        if connection.vendor == "postgresql":
            query = SearchQuery(" ".join(words), config=SEARCH_CONFIG, search_type="plain")
            matching = ItemSearch.objects.filter(item_id=OuterRef("pk"), document=query)
            return self.filter(Exists(matching) | exact)
        found = Q()
        for word in words:
            found &= (
                Q(prompt__icontains=word)
                | Q(output__icontains=word)
                | Q(review_notes__icontains=word)
            )
        return self.filter(found | exact)


SUBMITTED_CONTENT_FIELDS = (
    "prompt",
    "messages",
    "tools",
    "is_transcript",
    "output",
    "context",
    "metadata",
)


class ReviewItem(models.Model):
    """One model output submitted for review."""

    # Unknown confidence sorts as the lowest. Coalesce instead of NULLS FIRST
    # because SQLite cannot put NULLS FIRST in an index.
    QUEUE_ORDER = (
        F("priority").desc(),
        Coalesce("confidence", Value(-1.0)).asc(),
        F("created_at").asc(),
        F("id").asc(),
    )

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="items")
    kind = models.CharField(
        max_length=10,
        choices=ItemKind.choices,
        default=ItemKind.SINGLE,
        help_text="single: one output (approve / reject / correct); comparison: 2-4 candidates "
        "(reviews.models.comparisons), reviewed as a preference.",
    )
    external_id = models.CharField(
        max_length=255, help_text="The client's id for this output; resubmits are idempotent."
    )
    prompt = models.TextField(
        help_text="The user prompt the model answered (of a transcript: its last user turn)."
    )
    messages = models.JSONField(
        default=list,
        blank=True,
        help_text="OpenAI chat messages (reviews.transcripts): the history before the prompt, "
        "or with is_transcript the whole conversation ending with the turn under review.",
    )
    tools = models.JSONField(
        default=list, blank=True, help_text="Tool definitions offered to the model (OpenAI shape)."
    )
    is_transcript = models.BooleanField(
        default=False,
        help_text="Submitted as a whole conversation: prompt and output are copied from messages.",
    )
    output = models.TextField(
        help_text="The model output under review (untrusted text); of a transcript, the text "
        "of its final assistant turn."
    )
    model_name = models.CharField(max_length=200)
    model_version = models.CharField(max_length=200, db_index=True)
    confidence = models.FloatField(
        null=True, blank=True, help_text="The model's confidence in [0, 1], if known."
    )
    context = models.JSONField(
        default=list, blank=True, help_text="Retrieved documents: [{text, source, title, id}]."
    )
    metadata = models.JSONField(default=dict, blank=True)
    payload_hash = models.CharField(
        max_length=64, editable=False, help_text="sha256 of the submitted fields."
    )

    status = models.CharField(
        max_length=20, choices=ItemStatus.choices, default=ItemStatus.PENDING_CHECKS
    )
    priority = models.SmallIntegerField(default=PRIORITY_NORMAL)
    in_queue = models.BooleanField(
        default=False, help_text="Waiting for a human review (including audit samples)."
    )
    is_audit = models.BooleanField(
        default=False, help_text="Released automatically and sampled for an audit review."
    )
    review_reasons = models.JSONField(
        default=list, blank=True, help_text="Why this item was sent to a human."
    )
    final_output = models.TextField(
        null=True, blank=True, help_text="The released output once final (None if rejected)."
    )
    final_verdict = models.CharField(
        max_length=10, blank=True, help_text="approve / reject / correct once a human decided."
    )
    final_reason_code = models.CharField(max_length=50, blank=True)
    final_severity = models.CharField(max_length=10, blank=True)
    adjudicated = models.BooleanField(default=False)
    final_preference = models.CharField(
        max_length=10,
        blank=True,
        help_text="Comparisons: winner / tie / all_bad once final (reviews.models.comparisons).",
    )
    final_candidate = models.ForeignKey(
        "reviews.Candidate",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Comparisons: the winning candidate once final (its output, or the "
        "correction of it, is final_output).",
    )
    is_control = models.BooleanField(
        default=False,
        editable=False,
        help_text="A control: a known-answer item served blindly to reviewers to measure them. "
        "Never exported, sent to clients or counted in model accuracy.",
    )
    second_review = models.BooleanField(
        default=False,
        editable=False,
        help_text="Sent to a second blind review (its first reviewer showed rushed-review "
        "signals): needs one more review than the project asks.",
    )
    review_notes = models.TextField(
        blank=True,
        default="",
        editable=False,
        help_text="Reviewers' notes on this item, one a line, for the item search "
        "(written by review_submit).",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    # What the client submitted never changes after ingest (corrections go to
    # final_output), so history rows leave it out: every status change would
    # otherwise copy the prompt, output and context again, several KB an item
    # over its life, and half the WAL of an ingest.
    # review_notes copies Review.note, which has its own history.
    # History is read by item (id) and by time (history_date); the indexes the
    # item's own columns have would only cost every history row five more entries.
    history = HistoricalRecords(
        excluded_fields=[*SUBMITTED_CONTENT_FIELDS, "review_notes"],
        no_db_index=["project", "model_version", "created_at", "final_candidate"],
    )
    objects = ReviewItemQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"], name="unique_item_external_id"
            ),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True)
                | (Q(confidence__gte=0.0) & Q(confidence__lte=1.0)),
                name="item_confidence_in_unit_interval",
            ),
        ]
        indexes = [
            models.Index(
                "project",
                F("priority").desc(),
                Coalesce("confidence", Value(-1.0)).asc(),
                "created_at",
                "id",
                condition=Q(in_queue=True),
                name="item_queue_idx",
            ),
            models.Index(fields=["project", "status", "id"], name="item_project_status_idx"),
            models.Index(
                fields=["project", "id"], condition=Q(is_control=True), name="item_control_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.external_id}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def is_comparison(self) -> bool:
        return self.kind == ItemKind.COMPARISON


class ItemSearch(models.Model):
    """An item's full-text document (``SearchDocument``), kept off the ingest path.

    Written only by ``search_index_pending`` (a job, seconds after the write
    that queued the item in ``SearchPending``): a GIN index on the item table
    cost PostgreSQL as much CPU per ingested item as the whole app path.
    PostgreSQL only; the SQLite demo searches the item's columns directly.
    """

    item = models.OneToOneField(
        ReviewItem,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="search_entry",
        help_text="The item this document is built from.",
    )
    document = SearchVectorField(help_text="to_tsvector of the item's notes, prompt and output.")

    class Meta:
        indexes = [GinIndex(fields=["document"], name="item_search_gin_idx")]

    def __str__(self) -> str:
        return f"search document of item {self.item_id}"


class SearchPending(models.Model):
    """The queue of items whose ``ItemSearch`` document must be (re)built.

    One tiny row per item, written in the transaction that stores the item or
    changes its search text; ``search_index_pending`` takes the rows (``FOR
    UPDATE SKIP LOCKED``) and deletes them as it builds the documents. No
    foreign key: a deleted item's row is simply dropped by the indexer.
    """

    item_id = models.BigIntegerField(primary_key=True, help_text="The item to (re)index.")

    def __str__(self) -> str:
        return f"item {self.item_id} waiting for the search index"


class CheckResult(models.Model):
    """The outcome of one tier-1 check on one item. Written once, never changed.

    Rows are written only by ingest, in the transaction that inserts their item,
    and the rule's name, kind and severity are copied in. So the references carry
    no database constraint: PostgreSQL checks deferred foreign keys one row at a
    time at commit, which for four checks an item was a sixth of ingest's CPU.
    Deleting an item or a rule still cascades / sets NULL, through Django.
    """

    item = models.ForeignKey(
        ReviewItem, on_delete=models.CASCADE, related_name="check_results", db_constraint=False
    )
    rule = models.ForeignKey(
        CheckRule,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=CheckKind.choices)
    severity = models.CharField(max_length=10, choices=CheckSeverity.choices)
    passed = models.BooleanField()
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name}: {'pass' if self.passed else 'fail'}"
