"""The reviewer's two round trips cost the same SQL statements whatever the queue size.

claim+render: POST "Start reviewing", GET the review page it redirects to.
submit-and-next: POST the decision, GET the next review page. Counted at the cursor
(the test client resets Django's query log at every request), for single items and
for comparisons, with another reviewer holding a claim at the head of the queue.
"""

import re
from contextlib import contextmanager

import pytest
from django.db import connection
from django.urls import reverse

from reviews.workspace.services import assignment_claim_next
from tests import factories

WINNER = re.compile(r'name="choice" value="(winner:\d+)"')
# Session, user, roles, the claim's own statements and the page's reads (see
# reviews/workspace/admin.py and selectors.py), for this suite's project;
# bench/workspace.py prints the counts of its own projects.
BUDGETS = {
    "single": {"claim+render": 20, "submit-and-next": 36},
    "comparison": {"claim+render": 19, "submit-and-next": 31},
}


@contextmanager
def counted():
    statements: list[str] = []

    def count(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        yield statements


def fill(project, kind: str, count: int) -> None:
    if kind == "single":
        payloads = [factories.item_payload() for _ in range(count)]
    else:
        payloads = [factories.comparison_payload(2 + n % 3) for n in range(count)]
    factories.ingest(project, *payloads)


def round_trips(client, project, kind: str) -> dict[str, int]:
    """Statements of one claim+render and one submit-and-next; the next claim released."""
    spent = {}
    with counted() as statements:
        claimed = client.post(reverse("admin:reviews_workspace_claim", args=[project.pk]))
        assert claimed.status_code == 302
        page = client.get(claimed.url)
        assert page.status_code == 200
    spent["claim+render"] = len(statements)
    if kind == "single":
        decision = {"action": "approve"}
    else:
        decision = {"choice": WINNER.search(page.content.decode()).group(1)}
    with counted() as statements:
        submitted = client.post(claimed.url, decision)
        assert submitted.status_code == 302
        assert "/workspace/review/" in submitted.url, submitted.url
        assert client.get(submitted.url).status_code == 200
    spent["submit-and-next"] = len(statements)
    release = {"action": "release"} if kind == "single" else {"choice": "release"}
    assert client.post(submitted.url, release).status_code == 302
    return spent


@pytest.mark.parametrize("kind", ["single", "comparison"])
def test_claim_render_and_submit_next_cost_the_same_at_any_queue_size(
    client, project, reviewer, second_reviewer, kind
):
    fill(project, kind, 4)
    # Another reviewer holds the head of the queue: the claim walks past it.
    assert assignment_claim_next(reviewer=second_reviewer, project=project) is not None
    client.force_login(reviewer)
    round_trips(client, project, kind)  # the first decision puts an undo offer in the session
    small = round_trips(client, project, kind)
    fill(project, kind, 60)
    large = round_trips(client, project, kind)
    assert small == large
    for name, budget in BUDGETS[kind].items():
        assert large[name] <= budget, (name, large[name])
