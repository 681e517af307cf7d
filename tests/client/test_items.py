"""Submitting, reading and waiting through the client, against the live server."""

import threading
import time

import hitl
import httpx
import pytest
from django.db import connection

from reviews.api.auth import ApiKeyRateThrottle
from reviews.models import ReviewItem, RubricCriterion
from reviews.services.projects import api_key_create
from reviews.workspace.services import ReviewInput, assignment_claim_next, review_submit
from tests import factories
from tests.client.proxy import DROP, Fault

pytestmark = pytest.mark.django_db(transaction=True)


def payload(n, **overrides):
    return factories.item_payload(external_id=f"case-{n}", **overrides)


def test_submit_many_sends_2500_items_in_three_requests(proxy, key):
    sent = []
    hooks = {"request": [lambda request: sent.append((request.method, request.url.path))]}
    with hitl.Client(base_url=proxy.url, api_key=key, event_hooks=hooks) as client:
        done = []
        result = client.submit_many(
            [payload(n) for n in range(2500)], progress=lambda d, t: done.append((d, t))
        )
    assert sent == [("POST", "/api/v1/items/")] * 3
    assert proxy.forwarded == [("POST", "/api/v1/items/")] * 3
    assert (result.created, result.existing, result.requests) == (2500, 0, 3)
    assert [item.external_id for item in result.items] == [f"case-{n}" for n in range(2500)]
    assert done == [(1000, 2500), (2000, 2500), (2500, 2500)]
    assert ReviewItem.objects.count() == 2500
    # The server said its limit; the client keeps it.
    assert client.state.max_batch == 1000


def test_submit_many_follows_a_smaller_server_limit(proxy, key, settings):
    settings.HITL_MAX_BATCH = 400  # read per request by the items view's header
    with hitl.Client(base_url=proxy.url, api_key=key) as client:
        result = client.submit_many([payload(n) for n in range(900)])
    assert result.created == 900
    # 1,000 refused (400 with X-HITL-Max-Batch: 400), then 400 + 400 + 100.
    assert [path for _method, path in proxy.forwarded] == ["/api/v1/items/"] * 4
    assert ReviewItem.objects.count() == 900


def test_429_and_503_are_retried_honouring_retry_after(client, proxy):
    proxy.plan = [
        Fault("POST", "/api/v1/items/", 429, {"Retry-After": "1"}),
        Fault("POST", "/api/v1/items/", 503),
        Fault("POST", "/api/v1/items/", DROP),
    ]
    started = time.monotonic()
    result = client.submit_many([payload(n) for n in range(3)])
    elapsed = time.monotonic() - started
    assert result.created == 3
    assert proxy.seen == [("POST", "/api/v1/items/")] * 4
    assert proxy.forwarded == [("POST", "/api/v1/items/")]
    assert elapsed >= 1.0, "Retry-After: 1 was not honoured"
    assert ReviewItem.objects.count() == 3


def test_the_servers_own_throttle_is_waited_out(client, proxy, monkeypatch):
    item = client.submit(payload(1))
    # DRF's throttle of API keys, tightened: its 429s carry Retry-After.
    monkeypatch.setattr(ApiKeyRateThrottle, "rate", "1/s", raising=False)
    started = time.monotonic()
    for _ in range(3):
        assert client.get(item.id).external_id == "case-1"
    assert 429 in proxy.statuses
    assert time.monotonic() - started >= 1.0  # Retry-After was waited for
    assert proxy.statuses[-1] == 200


def test_a_retry_after_a_lost_answer_stores_nothing_twice(client, proxy, key):
    items = [payload(n) for n in range(5)]
    client.submit_many(items)
    # The answer of an earlier try was lost: the retry is an identical resubmit.
    result = client.submit_many(items)
    assert (result.created, result.existing) == (0, 5)
    assert ReviewItem.objects.count() == 5


def test_retries_run_out_into_typed_errors(proxy, key):
    policy = hitl.RetryPolicy(attempts=2, base=0.01, cap=0.02)
    with hitl.Client(base_url=proxy.url, api_key=key, retry=policy) as client:
        proxy.plan = [Fault("GET", "/api/v1/items/", 503)] * 2
        with pytest.raises(hitl.ServerError) as server_error:
            client.get(1)
        assert server_error.value.status == 503
        proxy.plan = [Fault("GET", "/api/v1/items/", 429, {"Retry-After": "3600"})]
        with pytest.raises(hitl.RateLimited) as limited:
            client.get(1)
        assert limited.value.retry_after == 3600
    nowhere = hitl.Client(base_url="http://127.0.0.1:9", api_key=key, retry=policy)
    with nowhere, pytest.raises(hitl.ConnectionFailed):
        nowhere.get(1)


def test_conflicting_resubmit_raises_conflict_error_and_changes_nothing(client):
    item = payload(1)
    first = client.submit(item)
    assert first.created is True and first.status == "pending_review"
    again = client.submit(item)
    assert again.created is False and again.id == first.id
    with pytest.raises(hitl.ConflictError) as conflict:
        client.submit({**item, "output": "Something else entirely."})
    assert conflict.value.status == 409
    assert conflict.value.external_ids == ["case-1"]
    assert "different content" in conflict.value.message
    with pytest.raises(hitl.ConflictError):
        client.submit_many([payload(2), {**item, "output": "Changed in a batch."}])
    assert ReviewItem.objects.get(external_id="case-1").output == item["output"]
    assert not ReviewItem.objects.filter(external_id="case-2").exists()


def test_invalid_items_raise_validation_error_naming_the_fields(client):
    bad = payload(2, confidence=1.5)
    del bad["prompt"]
    with pytest.raises(hitl.ValidationError) as invalid:
        client.submit(bad)
    assert set(invalid.value.errors) == {"prompt", "confidence"}
    with pytest.raises(hitl.ValidationError) as in_batch:
        client.submit_many([payload(3), payload(4, confidence="high")])
    assert list(in_batch.value.errors) == ["items.1.confidence"]
    assert "items.1.confidence" in str(in_batch.value)
    assert ReviewItem.objects.count() == 0


def test_bad_key_raises_auth_error(proxy):
    client = hitl.Client(base_url=proxy.url, api_key="not-a-key")
    with client, pytest.raises(hitl.AuthError) as refused:
        client.get(1)
    assert refused.value.status == 401


def test_client_reads_url_and_key_from_the_environment(proxy, key, monkeypatch):
    monkeypatch.setenv("HITL_URL", proxy.url + "/api/v1/")
    monkeypatch.setenv("HITL_API_KEY", key)
    with hitl.Client() as client:
        assert client.submit(
            hitl.Item(
                external_id="env-1",
                prompt="Dose?",
                output="4 g.",
                model_name="acme-med",
                model_version="v1",
                confidence=0.8,
                messages=[hitl.Message("system", "Be careful.")],
                context=[hitl.ContextDocument("Max 4 g/24 h.", source="formulary.pdf")],
                metadata={"ticket": "T-1"},
            )
        ).created
    stored = ReviewItem.objects.get(external_id="env-1")
    assert stored.messages == [{"role": "system", "content": "Be careful."}]
    assert stored.context == [{"text": "Max 4 g/24 h.", "source": "formulary.pdf"}]
    monkeypatch.delenv("HITL_API_KEY")
    with pytest.raises(hitl.HITLError, match="HITL_API_KEY"):
        hitl.Client()


def test_get_find_and_iter_items_follow_cursor_pages(client, gate):
    client.submit_many([payload(n, model_version="v1" if n % 2 else "v2") for n in range(25)])
    found = client.find("case-7")
    assert found is not None and found.external_id == "case-7"
    assert client.get(found.id).external_id == "case-7"
    assert client.find("no-such-id") is None
    seen = [item.external_id for item in client.iter_items(model_version="v1", page_size=4)]
    assert sorted(seen) == sorted(f"case-{n}" for n in range(25) if n % 2)
    assert len(seen) == 12
    picked = client.iter_items(external_id=["case-1", "case-2", "case-99"])
    assert sorted(item.external_id for item in picked) == ["case-1", "case-2"]
    assert list(client.iter_items(status="approved")) == []
    with pytest.raises(hitl.NotFound):
        client.get(10**9)


def _decide_later(item_id, reviewer, delay, failures):
    """A reviewer claims the next item (``item_id``: first in the queue) and corrects it."""
    time.sleep(delay)
    try:
        assignment = assignment_claim_next(
            reviewer=reviewer, project=ReviewItem.objects.get(pk=item_id).project
        )
        assert assignment.item_id == item_id
        review_submit(
            assignment_id=assignment.pk,
            reviewer=reviewer,
            data=ReviewInput(
                verdict="correct",
                corrected_output="Up to 4 g a day; less with liver disease.",
                reason_code="incomplete",
                severity="major",
            ),
        )
    except Exception as exc:
        failures.append(exc)
    finally:
        connection.close()


def test_wait_for_decision_returns_once_a_reviewer_decides(client, gate, django_user_model):
    reviewer = django_user_model.objects.create_user("rita", password="x", is_staff=True)
    factories.add_member(gate, reviewer, "reviewer")
    item = client.submit(payload(42))
    with pytest.raises(hitl.WaitTimeout) as early:
        client.wait_for_decision(item.id, timeout=0.3)
    assert early.value.last.status == "pending_review"
    failures = []
    thread = threading.Thread(target=_decide_later, args=(item.id, reviewer, 1.0, failures))
    thread.start()
    try:
        final = client.wait_for_decision(item.id, timeout=30)
    finally:
        thread.join()
    assert failures == []
    assert final.status == "corrected" and final.is_final
    assert final.final_output == "Up to 4 g a day; less with liver disease."
    assert final.decision.verdict == "correct" and final.decision.automatic is False
    assert final.decision.reason_code == "incomplete"
    assert final.decision.reasons == [] and final.audit is None


def test_automatic_decisions_and_the_audit_outcome(proxy, django_user_model):
    project = factories.make_project(
        slug="support", mode="monitor", confidence_threshold=0.5, audit_sample_rate=1.0
    )
    factories.make_rule(project, name="short", kind="max_length", limit=30, severity="blocking")
    _key, raw = api_key_create(project=project, name="support client")
    auditor = django_user_model.objects.create_user("audrey", password="x", is_staff=True)
    factories.add_member(project, auditor, "reviewer")
    with hitl.Client(base_url=proxy.url, api_key=raw) as client:
        rejected = client.submit(payload(1, output="x" * 40))
        assert rejected.status == "auto_rejected"
        assert rejected.decision.verdict == "auto_reject" and rejected.decision.automatic
        assert rejected.decision.reasons == ["check_failed:short"]
        released = client.submit(payload(2, output="4 g per day."))
        assert released.status == "auto_approved"
        assert released.decision.verdict == "auto_approve"
        assert released.decision.reasons == ["no_trigger", "audit_sample"]
        assert released.audit.status == "pending" and released.audit.agreed is None

        assignment = assignment_claim_next(reviewer=auditor, project=project)
        review_submit(
            assignment_id=assignment.pk,
            reviewer=auditor,
            data=ReviewInput(verdict="reject", reason_code="hallucination", severity="major"),
        )
        audited = client.get(released.id)
        assert audited.status == "auto_approved"  # the audit measures, it does not decide
        assert audited.audit.status == "done"
        assert audited.audit.audited_by == "user audrey"
        assert audited.audit.agreed is False
        assert (audited.audit.verdict, audited.audit.reason_code) == ("reject", "hallucination")
        assert audited.audit.audited_at is not None
        listed = {item.id: item for item in client.iter_items()}
        assert listed[released.id].audit == audited.audit
        assert listed[rejected.id].audit is None


def test_async_client_has_the_same_methods(proxy, key, django_user_model, gate):
    import asyncio

    reviewer = django_user_model.objects.create_user("sam", password="x", is_staff=True)
    factories.add_member(gate, reviewer, "reviewer")
    sent = []

    async def record(request: httpx.Request) -> None:
        sent.append(request.method)

    async def scenario():
        hooks = {"request": [record]}
        async with hitl.AsyncClient(base_url=proxy.url, api_key=key, event_hooks=hooks) as client:
            proxy.plan = [Fault("POST", "/api/v1/items/", 503)]
            batch = await client.submit_many([payload(n) for n in range(1500)])
            assert (batch.created, batch.requests) == (1500, 2)
            found = await client.find("case-3")
            assert found is not None and (await client.get(found.id)).external_id == "case-3"
            seen = [item.external_id async for item in client.iter_items(page_size=500)]
            assert len(seen) == 1500
            # Lowest confidence: first in the reviewer's queue.
            urgent = payload("urgent", confidence=0.01)
            one = await client.submit(urgent)
            with pytest.raises(hitl.ConflictError):
                await client.submit({**urgent, "output": "Changed."})
            failures = []
            thread = threading.Thread(target=_decide_later, args=(one.id, reviewer, 0.5, failures))
            thread.start()
            try:
                final = await client.wait_for_decision(one.id, timeout=30)
            finally:
                thread.join()
            assert failures == []
            assert final.status == "corrected"

    asyncio.run(scenario())
    # 2 batches + the retried 503, then find, get, 3 pages, the conflict, the polls.
    assert sent[:3] == ["POST"] * 3
    assert len(proxy.seen) == len(sent)


def test_the_decision_carries_the_rubric_scores(client, gate, django_user_model):
    RubricCriterion.objects.create(project=gate, key="factuality", label="Factuality")
    reviewer = django_user_model.objects.create_user("rubric-rita", password="x", is_staff=True)
    factories.add_member(gate, reviewer, "reviewer")
    item = client.submit(payload(43))
    assignment = assignment_claim_next(reviewer=reviewer, project=gate)
    review_submit(
        assignment_id=assignment.pk,
        reviewer=reviewer,
        data=ReviewInput(verdict="approve", rubric={"factuality": "5"}),
    )
    final = client.get(item.id)
    assert final.decision.rubric_scores == [
        {"reviewer": "user rubric-rita", "scores": {"factuality": 5}}
    ]
