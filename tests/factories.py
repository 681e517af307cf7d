"""Small builders for test data. Items go through the real ingest service."""

import itertools

from reviews.models import CheckRule, Project, ProjectMembership
from reviews.services.accounts import user_roles_sync
from reviews.services.ingest import item_ingest

_counter = itertools.count(1)


def make_project(**overrides) -> Project:
    n = next(_counter)
    fields = {
        "name": f"Project {n}",
        "slug": f"project-{n}",
        "mode": "gate",
        "audit_sample_rate": 0.0,
        "audit_salt": "test-salt",
    }
    fields.update(overrides)
    return Project.objects.create(**fields)


def make_rule(project: Project, **fields) -> CheckRule:
    fields.setdefault("name", f"rule-{next(_counter)}")
    rule = CheckRule(project=project, **fields)
    rule.full_clean()
    rule.save()
    return rule


def add_member(project: Project, user, role: str = "reviewer") -> ProjectMembership:
    """A membership as the admin makes it: the user's role groups follow."""
    membership = ProjectMembership.objects.create(project=project, user=user, role=role)
    user_roles_sync(user=user)
    return membership


def item_payload(**overrides) -> dict:
    n = next(_counter)
    payload = {
        "external_id": f"ext-{n}",
        "prompt": f"What is the maximum daily dose of paracetamol for adults? (case {n})",
        "output": "For healthy adults the usual maximum is 4 g per day, split into doses.",
        "model_name": "acme-med",
        "model_version": "2026-11-01",
        "confidence": 0.9,
        "messages": [],
        "context": [],
        "metadata": {},
    }
    payload.update(overrides)
    return payload


def ingest(project: Project, *payloads: dict, user=None):
    """Ingest payloads (default: one) and return the stored items."""
    payloads = payloads or (item_payload(),)
    return item_ingest(project=project, payloads=list(payloads), user=user).items


def comparison_payload(count: int = 2, **overrides) -> dict:
    """A comparison item: one prompt, ``count`` candidates from different models."""
    n = next(_counter)
    payload = {
        "external_id": f"cmp-{n}",
        "prompt": f"How long should paracetamol doses be spaced? (case {n})",
        "candidates": [
            {
                "output": f"Candidate answer {i} for case {n}: space doses {4 + i} hours apart.",
                "model_name": f"model-{'wxyz'[i]}",
                "model_version": f"v{i + 1}.0",
                "confidence": 0.5 + i / 10,
            }
            for i in range(count)
        ],
        "messages": [],
        "context": [],
        "metadata": {},
    }
    payload.update(overrides)
    return payload
