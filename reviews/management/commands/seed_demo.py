"""Create a demo: three projects with checks, a few hundred items, users and an API key."""

import random

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from reviews import demo
from reviews.models import ApiKey, CheckRule, MemberRole, Project, ProjectMembership
from reviews.services.accounts import user_roles_sync
from reviews.services.ingest import item_ingest
from reviews.services.projects import api_key_create, api_key_revoke

USERS = [
    # username, password, superuser, role in every demo project
    ("admin", "demo-admin-pass", True, MemberRole.ADMIN),
    ("reviewer", "demo-reviewer-pass", False, MemberRole.REVIEWER),
    ("reviewer2", "demo-reviewer2-pass", False, MemberRole.REVIEWER),
    ("senior", "demo-senior-pass", False, MemberRole.SENIOR),
]

PROJECTS = [
    {
        "slug": "clinical-answers",
        "name": "Clinical answers",
        "mode": "gate",
        "reviews_required": 1,
        "risk_keywords": ["overdose", "pregnancy", "warfarin"],
        "checks": [
            {"name": "Not empty", "kind": "min_length", "limit": 20, "severity": "blocking"},
            {
                "name": "No cure claims",
                "kind": "banned_keywords",
                "severity": "blocking",
                "keywords": ["guaranteed cure", "miracle"],
            },
            {
                "name": "Doctor referral",
                "kind": "must_match",
                "severity": "warning",
                "pattern": r"(?i)\b(doctor|pharmacist|prescriber)\b",
            },
        ],
    },
    {
        "slug": "contract-qa",
        "name": "Contract Q&A",
        "mode": "monitor",
        "reviews_required": 2,
        "confidence_threshold": 0.75,
        "audit_sample_rate": 0.1,
        "risk_keywords": ["lawsuit", "indemnification", "unlimited"],
        "checks": [
            {"name": "Max length", "kind": "max_length", "limit": 2000, "severity": "blocking"},
            {
                "name": "No personal data",
                "kind": "must_not_match",
                "severity": "warning",
                "pattern": r"\b\d{3}-\d{2}-\d{4}\b",
            },
        ],
    },
    {
        "slug": "invoice-extraction",
        "name": "Invoice extraction",
        "mode": "gate",
        "reviews_required": 1,
        "checks": [
            {"name": "Valid JSON", "kind": "json_valid", "severity": "blocking"},
            {
                "name": "Invoice schema",
                "kind": "json_schema",
                "severity": "blocking",
                "json_schema": demo.INVOICE_SCHEMA,
            },
        ],
    },
]


class Command(BaseCommand):
    help = "Seed a demo: projects with checks, a few hundred items, users and an API key."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=7, help="Random seed of the demo data.")

    @transaction.atomic
    def handle(self, *args, seed: int, **options):
        rng = random.Random(seed)
        users = self._users()
        projects = {spec["slug"]: self._project(spec, users) for spec in PROJECTS}
        for user in users.values():
            user_roles_sync(user=user)  # groups (admin permissions) follow the roles
        batches = {
            "clinical-answers": demo.text_items(
                rng, demo.MEDICAL, 120, "med", "You are a careful clinical assistant.", "acme-med"
            ),
            "contract-qa": demo.text_items(
                rng, demo.LEGAL, 100, "law", "You answer questions about contracts.", "lexi"
            ),
            "invoice-extraction": demo.invoice_items(rng, 80),
        }
        created = 0
        for slug, payloads in batches.items():
            outcome = item_ingest(
                project=projects[slug],
                payloads=list(payloads),
                user=users["admin"],
                via="demo seed",
            )
            created += outcome.created_count
        key = self._rotate_demo_key(projects["clinical-answers"], users["admin"])

        self.stdout.write(self.style.SUCCESS(f"Demo ready: {created} new items in 3 projects."))
        self.stdout.write("Log in at http://127.0.0.1:8000/admin/ as:")
        for username, password, _, role in USERS:
            self.stdout.write(f"  {username:<10} password {password:<22} ({role.label})")
        self.stdout.write(f"API key for project 'clinical-answers' (shown once): {key}")
        self.stdout.write("API docs: http://127.0.0.1:8000/api/docs/")

    def _users(self):
        User = get_user_model()
        users = {}
        for username, password, superuser, _ in USERS:
            user = User.objects.filter(username=username).first()
            if user is None:
                factory = User.objects.create_superuser if superuser else User.objects.create_user
                user = factory(
                    username=username, password=password, email=f"{username}@example.com"
                )
            if not user.is_staff:
                user.is_staff = True
                user.save(update_fields=["is_staff"])
            users[username] = user
        return users

    def _project(self, spec, users):
        fields = {k: v for k, v in spec.items() if k not in ("slug", "checks")}
        project, created = Project.objects.get_or_create(slug=spec["slug"], defaults=fields)
        if created:
            for check in spec["checks"]:
                rule = CheckRule(project=project, **check)
                rule.full_clean()
                rule.save()
        for username, _, _, role in USERS:
            ProjectMembership.objects.get_or_create(
                project=project, user=users[username], defaults={"role": role}
            )
        return project

    def _rotate_demo_key(self, project, user) -> str:
        for old in ApiKey.objects.filter(project=project, name="demo client", revoked_at=None):
            api_key_revoke(key=old, user=user)
        _, raw = api_key_create(project=project, name="demo client", user=user)
        return raw
