"""The review-log export carries each review's rubric scores."""

import hashlib

from reviews.models import Review
from tests.datasets.factories import reviewed
from tests.datasets.test_services_build import build, lines


def test_review_log_lines_hold_each_reviews_rubric_scores(project, export_dir):
    item = reviewed(project)
    Review.objects.filter(item=item).update(
        rubric_scores={"factuality": 4, "register": "formal", "safe": True}
    )
    plain = reviewed(project, verdict="reject", severity="major")
    first = build([project], fmt="review_log")
    rows = {row["item_id"]: row for row in lines(export_dir, first)}
    assert rows[item.pk]["reviews"][0]["rubric_scores"] == {
        "factuality": 4,
        "register": "formal",
        "safe": True,
    }
    assert rows[plain.pk]["reviews"][0]["rubric_scores"] == {}
    again = build([project], fmt="review_log")
    body = (export_dir / again.files["train"]["name"]).read_bytes()
    assert again.files["train"]["sha256"] == first.files["train"]["sha256"]
    assert hashlib.sha256(body).hexdigest() == first.files["train"]["sha256"]
