"""Filters for showing model text on review pages."""

from django import template

from reviews.markdown import render_markdown
from reviews.services.review_rules import reason_label as _reason_label

register = template.Library()


@register.filter
def markdown(value) -> str:
    """Untrusted text rendered as markdown without raw HTML (see reviews.markdown)."""
    return render_markdown("" if value is None else str(value))


@register.filter
def reason_label(code) -> str:
    """A reason code as people read it (``reviews.services.review_rules.reason_label``)."""
    return _reason_label(code)
