"""Formatting filters for the monitoring templates."""

from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def pct(value) -> str:
    """0.9512 -> '95.1%'; None -> an en dash."""
    if value is None:
        return "\u2013"
    return f"{float(value) * 100:.1f}%"


@register.filter
def age(value: timedelta | None) -> str:
    """A queue age for people: '3 d 4 h', '2 h 5 min', '40 s'."""
    if value is None:
        return "\u2013"
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{seconds} s"
