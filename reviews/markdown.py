"""Model output as people read it: markdown rendered safely.

markdown-it-py with the ``js-default`` preset: raw HTML in the text is escaped,
never passed through (``html`` off), URLs are not linkified, and links to
``javascript:``, ``vbscript:``, ``file:`` and non-image ``data:`` are refused
by the parser's own ``validateLink``. On top of that, for the review pages:

- images are shown as links, not loaded (a model output must not make the
  reviewer's browser fetch a remote URL; the page's policy would block it);
- links open in a new tab without a referrer, so a click never leaves the
  review page or tells the target where it came from;
- table alignment becomes a class instead of a ``style`` attribute, which the
  Content-Security-Policy (``style-src 'self'``) would refuse.

Every page that renders text this way also offers the raw text (escaped).
"""

from functools import lru_cache

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

_ALIGN = {"text-align:left": "left", "text-align:center": "center", "text-align:right": "right"}


def _review_page_attributes(state) -> None:
    for block in state.tokens:
        if block.type in ("th_open", "td_open"):
            align = _ALIGN.get(str(block.attrs.pop("style", "")))
            if align:
                block.attrSet("class", f"md-align-{align}")
        for token in block.children or ():
            if token.type == "link_open":
                token.attrSet("target", "_blank")
                token.attrSet("rel", "noopener noreferrer nofollow")


def _image_as_link(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env) or "image"
    src = escapeHtml(str(token.attrGet("src") or ""))
    return (
        f'<a class="md-image" href="{src}" target="_blank" rel="noopener noreferrer nofollow">'
        f"[image: {escapeHtml(alt)}]</a>"
    )


def _parser() -> MarkdownIt:
    md = MarkdownIt("js-default", {"breaks": True})
    md.core.ruler.push("review_page_attributes", _review_page_attributes)
    md.add_render_rule("image", _image_as_link)
    return md


_MD = _parser()
# Texts shown again and again (system prompts, retrieved context, tool results) are
# rendered once per process: a render costs a few hundred microseconds of CPU.
_CACHED_UP_TO_CHARS = 20_000


@lru_cache(maxsize=2048)
def _rendered(text: str) -> str:
    return _MD.render(text)


def render_markdown(text: str) -> SafeString:
    """``text`` (untrusted) as HTML safe to put in a page: markdown, no raw HTML."""
    # markdown-it escapes every character of the text it does not turn into
    # markup itself; the result is safe by construction, not by sanitising.
    text = text or ""
    html = _rendered(text) if len(text) <= _CACHED_UP_TO_CHARS else _MD.render(text)
    return mark_safe(html)  # noqa: S308


def render_markdown_block(text: str, *, css_class: str = "md") -> SafeString:
    """``render_markdown`` wrapped in a ``div`` of ``css_class``."""
    return format_html('<div class="{}">{}</div>', css_class, render_markdown(text))
