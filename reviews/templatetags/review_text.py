"""Filters for showing model text on review pages."""

from django import template

from reviews.markdown import render_markdown
from reviews.services.review_rules import reason_label as _reason_label
from reviews.services.rubric import rubric_text as _rubric_text

register = template.Library()


@register.filter
def markdown(value) -> str:
    """Untrusted text rendered as markdown without raw HTML (see reviews.markdown)."""
    return render_markdown("" if value is None else str(value))


@register.filter
def reason_label(code) -> str:
    """A reason code as people read it (``reviews.services.review_rules.reason_label``)."""
    return _reason_label(code)


@register.filter
def rubric_text(scores) -> str:
    """A review's rubric scores as one line (``reviews.services.rubric.rubric_text``)."""
    return _rubric_text(scores if isinstance(scores, dict) else None)
