"""A second step before a change that apps feel at once (revoking or rotating a token).

The form asks in the browser (`static/confirm.js` shows its `data-confirm` question and sends
`confirm=yes` once accepted); without script the server asks on a page of its own instead. Either
way one click alone never does it.
"""

from dataclasses import dataclass

from fastapi.responses import Response

from billplane.dashboard.view import View

CONFIRM_FIELD = "confirm"


@dataclass(frozen=True)
class Question:
    heading: str  # the page's title, e.g. "Revoke a token"
    question: str  # what is about to happen, naming the record
    consequence: str  # what it does to apps, in one sentence
    action: str  # where the confirmed form is posted
    button: str
    back: str  # where Cancel leads
    danger: bool = False

    @property
    def dialog(self) -> str:
        """The words of the browser's confirm() dialog."""
        return f"{self.question} {self.consequence}"


def confirmed(form: dict[str, str]) -> bool:
    return form.get(CONFIRM_FIELD) == "yes"


def ask(view: View, question: Question, *, page: str) -> Response:
    return view.render("confirm.html", page=page, ask=question)
