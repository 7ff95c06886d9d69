"""Staff forms as a browser sees them: every form of a page with its hidden inputs.

A submit carries ALL the hidden inputs of its form (csrf_token today; a one-time submit
token tomorrow, with no change here), plus inputs outside the form that name it with
`form="..."` (the holds console's ticked checkboxes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Form:
    action: str
    method: str
    id: str | None
    hidden: list[tuple[str, str]] = field(default_factory=list)
    checkboxes: list[tuple[str, str]] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)  # names of the other inputs


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._open: Form | None = None
        self._outside: list[tuple[str, dict]] = []  # (form id, attrs) of inputs with form=

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._open = Form(attrs.get("action", ""), attrs.get("method", "get").lower(),
                              attrs.get("id"))
            self.forms.append(self._open)
        elif tag in ("input", "textarea", "select") and attrs.get("name"):
            if attrs.get("form"):
                self._outside.append((attrs["form"], {**attrs, "_tag": tag}))
            elif self._open is not None:
                _add(self._open, {**attrs, "_tag": tag})

    def handle_endtag(self, tag):
        if tag == "form":
            self._open = None

    def close(self):
        super().close()
        by_id = {f.id: f for f in self.forms if f.id}
        for form_id, attrs in self._outside:
            if form_id in by_id:
                _add(by_id[form_id], attrs)


def _add(form: Form, attrs: dict) -> None:
    kind = attrs.get("type", "text").lower() if attrs["_tag"] == "input" else attrs["_tag"]
    if kind == "hidden":
        form.hidden.append((attrs["name"], attrs.get("value", "")))
    elif kind == "checkbox":
        form.checkboxes.append((attrs["name"], attrs.get("value", "on")))
    else:
        form.fields.append(attrs["name"])


def forms_of(html: str) -> list[Form]:
    parser = _Forms()
    parser.feed(html)
    parser.close()
    return parser.forms


def form_posting_to(html: str, action: str) -> Form | None:
    return next((f for f in forms_of(html) if f.action == action and f.method == "post"), None)
