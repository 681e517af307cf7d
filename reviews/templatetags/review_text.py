"""Filters for showing model text on review pages."""

from django import template

from reviews.markdown import render_markdown

register = template.Library()


@register.filter
def markdown(value) -> str:
    """Untrusted text rendered as markdown without raw HTML (see reviews.markdown)."""
    return render_markdown("" if value is None else str(value))
