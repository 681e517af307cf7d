"""The judge service in-process: routing for every kind of answer, idempotency,
API keys, and the ingest hand-off (one job per chunk, after commit)."""

import pytest
import redis
from rq import Queue

from reviews.judge.services import judge_pending_items
from reviews.models import ItemStatus, JudgeVerdict, ReviewItem
from tests.factories import ingest, item_payload, make_project, make_rule
from tests.judge.conftest import make_judge


def judged(project, fake, *outputs, **payload_fields):
    items = ingest(project, *[item_payload(output=o, **payload_fields) for o in outputs])
    assert {item.status for item in items} == {ItemStatus.PENDING_JUDGE}
    judge_pending_items(item_ids=[item.pk for item in items])
    return [ReviewItem.objects.get(pk=item.pk) for item in items]


@pytest.fixture
def monitor(judged_monitor_project, fake_judge):
    make_judge(judged_monitor_project, fake_judge)
    return judged_monitor_project


def test_pass_auto_approves_in_monitor_mode_and_stores_the_verdict(monitor, fake_judge):
    (item,) = judged(monitor, fake_judge, "4 g per day. [[judge:pass]]")
    assert item.status == ItemStatus.AUTO_APPROVED
    assert item.final_output == item.output
    assert item.decided_at is not None and not item.in_queue
    verdict = item.judge_verdicts.get()
    assert (verdict.label, verdict.score, verdict.flagged) == ("pass", 0.93, False)
    assert verdict.model == "judge-large" and verdict.rubric_version == 1
    assert (verdict.prompt_tokens, verdict.completion_tokens) == (321, 42)
    assert verdict.latency_ms >= 0 and verdict.attempts == 1
    history = item.history.order_by("history_id").last()
    assert history.history_change_reason.startswith("Judge judge-large: pass (score 0.93)")
    assert history.history_user is None


@pytest.mark.parametrize(
    ("marker", "label", "reason"),
    [
        ("[[judge:flag]]", "flag", "judge_flag"),
        ("[[judge:lowpass]]", "pass", "judge_flag"),  # pass, but score under the threshold
        ("[[judge:garbage]]", "error", "judge_flag:error"),
        ("[[judge:500]]", "error", "judge_flag:error"),
        ("[[judge:429]]", "error", "judge_flag:error"),
        ("[[judge:slow]]", "error", "judge_flag:error"),
    ],
)
def test_flags_and_failures_send_the_item_to_a_human(monitor, fake_judge, marker, label, reason):
    (item,) = judged(monitor, fake_judge, f"An answer. {marker}")
    assert item.status == ItemStatus.PENDING_REVIEW
    assert item.in_queue and item.final_output is None and item.decided_at is None
    assert reason in item.review_reasons
    assert item.priority == 200  # risk first
    verdict = item.judge_verdicts.get()
    assert verdict.label == label and verdict.flagged


def test_error_verdicts_keep_what_went_wrong(monitor, fake_judge):
    garbage, slow, server = judged(
        monitor, fake_judge, "[[judge:garbage]]", "[[judge:slow]]", "[[judge:500]]"
    )
    assert "Unparseable judge reply" in garbage.judge_verdicts.get().error
    assert garbage.judge_verdicts.get().raw_reply == "Looks fine to me! {score: high"
    assert "timed out after 1 s" in slow.judge_verdicts.get().error
    assert "HTTP 500" in server.judge_verdicts.get().error


def test_gate_mode_reviews_everything_and_keeps_the_verdict(db, fake_judge):
    project = make_project(mode="gate")
    make_judge(project, fake_judge)
    (item,) = judged(project, fake_judge, "[[judge:pass]]")
    assert item.status == ItemStatus.PENDING_REVIEW
    assert item.review_reasons == ["gate"]
    assert item.judge_verdicts.get().label == "pass"


def test_ingest_triggers_survive_the_judge(monitor, fake_judge):
    (item,) = judged(monitor, fake_judge, "[[judge:pass]]", confidence=0.2)
    assert item.status == ItemStatus.PENDING_REVIEW
    assert item.review_reasons == ["low_confidence"]


def test_second_run_for_a_judged_item_does_nothing(monitor, fake_judge):
    (item,) = judged(monitor, fake_judge, "[[judge:flag]]")
    calls, history = len(fake_judge.requests), item.history.count()
    result = judge_pending_items(item_ids=[item.pk])
    assert (result.recorded, result.skipped) == (0, 1)
    assert len(fake_judge.requests) == calls
    assert JudgeVerdict.objects.filter(item=item).count() == 1
    assert item.history.count() == history


def test_transient_failures_wait_for_a_retry_unless_final(monitor, fake_judge):
    (item,) = ingest(monitor, item_payload(output="[[judge:429once:a]]"))
    first = judge_pending_items(item_ids=[item.pk], final_attempt=False)
    assert first.retry_item_ids == [item.pk]
    item.refresh_from_db()
    assert item.status == ItemStatus.PENDING_JUDGE and not item.judge_verdicts.exists()
    second = judge_pending_items(item_ids=[item.pk], final_attempt=False, attempt=2)
    assert second.recorded == 1
    item.refresh_from_db()
    assert item.status == ItemStatus.AUTO_APPROVED
    assert item.judge_verdicts.get().attempts == 2


def test_blocking_check_failure_is_never_judged(monitor, fake_judge):
    make_rule(monitor, kind="max_length", limit=5, severity="blocking")
    (item,) = ingest(monitor, item_payload(output="far too long [[judge:pass]]"))
    assert item.status == ItemStatus.AUTO_REJECTED
    assert fake_judge.requests == []


def test_stored_api_key_is_encrypted_and_sent_as_bearer(judged_monitor_project, fake_judge):
    config = make_judge(judged_monitor_project, fake_judge, api_key="sk-test-secret-123")
    assert "sk-test-secret-123" not in config.api_key_encrypted
    judged(judged_monitor_project, fake_judge, "[[judge:pass]]")
    assert fake_judge.headers[-1]["Authorization"] == "Bearer sk-test-secret-123"


def test_api_key_from_environment(judged_monitor_project, fake_judge, monkeypatch):
    monkeypatch.setenv("JUDGE_KEY_FOR_TEST", "sk-from-env")
    make_judge(judged_monitor_project, fake_judge, api_key_env="JUDGE_KEY_FOR_TEST")
    judged(judged_monitor_project, fake_judge, "[[judge:pass]]")
    assert fake_judge.headers[-1]["Authorization"] == "Bearer sk-from-env"


def test_missing_environment_key_is_a_judge_error_not_an_approval(
    judged_monitor_project, fake_judge, monkeypatch
):
    monkeypatch.delenv("JUDGE_KEY_MISSING", raising=False)
    make_judge(judged_monitor_project, fake_judge, api_key_env="JUDGE_KEY_MISSING")
    (item,) = judged(judged_monitor_project, fake_judge, "[[judge:pass]]")
    assert item.status == ItemStatus.PENDING_REVIEW
    assert "JUDGE_KEY_MISSING" in item.judge_verdicts.get().error
    assert fake_judge.requests == []


def test_disabled_judge_routes_pending_items_on_ingest_triggers(monitor, fake_judge):
    items = ingest(monitor, item_payload(confidence=0.9), item_payload(confidence=0.1))
    monitor.judge_config.enabled = False
    monitor.judge_config.save()
    judge_pending_items(item_ids=[item.pk for item in items])
    statuses = [ReviewItem.objects.get(pk=item.pk).status for item in items]
    assert statuses == [ItemStatus.AUTO_APPROVED, ItemStatus.PENDING_REVIEW]
    assert not JudgeVerdict.objects.exists()


def test_anthropic_backend_uses_a_forced_tool(judged_monitor_project, fake_judge):
    make_judge(judged_monitor_project, fake_judge, backend="anthropic", api_key="ak-1")
    passed, flagged = judged(judged_monitor_project, fake_judge, "[[judge:pass]]", "[[judge:flag]]")
    assert passed.status == ItemStatus.AUTO_APPROVED
    assert flagged.status == ItemStatus.PENDING_REVIEW
    verdict = flagged.judge_verdicts.get()
    assert (verdict.backend, verdict.model, verdict.label) == ("anthropic", "claude-judge", "flag")
    assert (verdict.prompt_tokens, verdict.completion_tokens) == (400, 55)
    request = fake_judge.requests[-1]
    assert request["tool_choice"] == {"type": "tool", "name": "record_verdict"}
    assert "medically accurate" in request["system"]
    headers = fake_judge.headers[-1]
    assert "ak-1" in (
        headers.get("X-Api-Key"),
        headers.get("Authorization", "").removeprefix("Bearer "),
    )


def test_ingest_enqueues_one_job_per_chunk_after_commit(
    monitor, judge_redis, settings, django_capture_on_commit_callbacks
):
    settings.HITL_JUDGE_CHUNK_SIZE = 4
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        items = ingest(monitor, *[item_payload() for _ in range(10)])
    queue = Queue("judge", connection=redis.Redis.from_url(judge_redis))
    assert queue.count == 0  # nothing is enqueued before the commit
    for callback in callbacks:
        callback()
    jobs = queue.get_jobs()
    # Three jobs of at most 4, even sized: 4, 3, 3 (not 4, 4, 2).
    ids = [item.pk for item in items]
    assert [job.args[0] for job in jobs] == [ids[:4], ids[4:7], ids[7:]]
    assert jobs[0].func_name == "reviews.judge.jobs.judge_items_job"


def test_ingest_without_a_judge_routes_at_once(db, fake_judge):
    project = make_project(mode="monitor")
    (item,) = ingest(project, item_payload(confidence=0.95))
    assert item.status == ItemStatus.AUTO_APPROVED
    assert fake_judge.requests == []


@pytest.mark.parametrize(
    ("response_format", "sent"),
    [("json_object", {"type": "json_object"}), ("prompt", None)],
)
def test_response_format_for_servers_without_structured_output(
    judged_monitor_project, fake_judge, response_format, sent
):
    make_judge(judged_monitor_project, fake_judge, response_format=response_format)
    (item,) = judged(judged_monitor_project, fake_judge, "[[judge:pass]]")
    assert item.status == ItemStatus.AUTO_APPROVED
    assert fake_judge.requests[-1].get("response_format") == sent
