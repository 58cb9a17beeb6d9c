"""Subjects and bodies: short Jinja2 templates, text and HTML, escaped and sandboxed.

The subject is the subscription's own template (`subject:`); the bodies are the
project's, so every message reads the same and links to the item's page.
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from reports.errors import SpecError

_TEXT = """Hello{{ ' ' ~ name if name }},

{% if items | length == 1 -%}
Your report {{ items[0].title }} for {{ items[0].label }} is ready.
{%- else -%}
{{ items | length }} reports are ready for you:
{%- endif %}
{% for item in items %}
- {{ item.title }}, {{ item.label }}: {{ item.pages }} pages{% if item.link %}
  {{ item.link }}{% endif %}
{%- endfor %}

Sent by reportrunner ({{ subscription }}).
"""

_HTML = """<p>Hello{{ ' ' ~ name if name }},</p>
{% if items | length == 1 %}<p>Your report <b>{{ items[0].title }}</b> for
{{ items[0].label }} is ready.</p>{% else %}<p>{{ items | length }} reports are ready
for you:</p>{% endif %}
<ul>{% for item in items %}<li>{{ item.title }}, {{ item.label }}: {{ item.pages }} pages
{% if item.link %}(<a href="{{ item.link }}">open</a>){% endif %}</li>{% endfor %}</ul>
<p style="color:#555">Sent by reportrunner ({{ subscription }}).</p>
"""

_text_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_html_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=True)
_TEXT_TEMPLATE = _text_env.from_string(_TEXT)
_HTML_TEMPLATE = _html_env.from_string(_HTML)


@dataclass(frozen=True)
class MessageItem:
    title: str
    label: str
    pages: int | None
    link: str | None


def subject(template: str, subscription: str, items: list[MessageItem]) -> str:
    first = items[0]
    label = first.label if len(items) == 1 else f"{len(items)} reports"
    try:
        text = _text_env.from_string(template).render(
            title=first.title, item_label=label, count=len(items), subscription=subscription
        )
    except Exception as exc:  # a subscription's template: its author's mistake, one line
        raise SpecError(f"{subscription}: subject template: {exc}") from None
    return " ".join(text.split())[:200]  # one line: a newline would forge headers


def bodies(subscription: str, name: str | None, items: list[MessageItem]) -> tuple[str, str]:
    context = {"subscription": subscription, "name": name, "items": items}
    return _TEXT_TEMPLATE.render(**context), _HTML_TEMPLATE.render(**context)
