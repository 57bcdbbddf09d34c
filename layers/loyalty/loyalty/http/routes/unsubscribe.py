"""GET/POST /unsubscribe?token=…: the unsubscribe link of an email, public (no login).

The signed token (`loyalty.notify.unsubscribe`) names the member and is the only credential.

* `GET` shows a small page (fr/en) whose button posts the same URL, and changes nothing: mail
  scanners and link previews fetch links, and must not unsubscribe anyone.
* `POST` (RFC 8058 one-click: `List-Unsubscribe=One-Click`, form-encoded, or the page's button, or
  an empty body; the body is not read) sets `emailOptIn` to false and records `optedOutAt` and
  `optOutSource: "one-click"`. A second `POST` is a success too.

A success is a page (`text/html`). A token that is not one of ours, or that was altered or made
with a retired secret, gets 400 `invalid_token` (never which check failed, nor which secret); an
expired one 410 `expired_token` (the member signs in to change its choices). Refusals are the API's
JSON error (SPEC §5), or a page saying the same when the client asks for HTML (`Accept: text/html`,
as browsers do). A genuine token of a
member that no longer exists gets the same 200 as anyone: the page reveals nobody's membership.
Nothing here logs the token or the member id.
"""

from __future__ import annotations

from html import escape
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BeforeValidator

from loyalty.clock import utcnow
from loyalty.http.errors import error_response
from loyalty.http.identity import public_route
from loyalty.http.resolver import errors
from loyalty.notify.config import notify_config
from loyalty.notify.unsubscribe import MAX_TOKEN_LENGTH, InvalidUnsubscribeToken, TokenProblem, read_token
from loyalty.store import members

router = APIGatewayHttpRouter()
PAGE_ROUTE = public_route("GET /unsubscribe")
ACTION_ROUTE = public_route("POST /unsubscribe")
OPT_OUT_SOURCE = "one-click"
HTML = "text/html; charset=utf-8"

Language = Literal["fr", "en"]

TEXTS: dict[Language, dict[str, str]] = {
    "en": {
        "title": "Unsubscribe",
        "confirm": "Stop the emails of the loyalty program (points about to expire and other news)?",
        "button": "Unsubscribe",
        "done_title": "You are unsubscribed",
        "done": "You will no longer receive these emails. You can turn them back on from your account.",
        "invalid_title": "This link does not work",
        "invalid": "This unsubscribe link is not valid. Use the link of a recent email, or sign in to "
        "change your email preferences.",
        "expired_title": "This link has expired",
        "expired": "This unsubscribe link is too old. Sign in to change your email preferences.",
    },
    "fr": {
        "title": "Désinscription",
        "confirm": "Ne plus recevoir les emails du programme de fidélité (points bientôt expirés et "
        "autres nouvelles) ?",
        "button": "Me désinscrire",
        "done_title": "Vous êtes désinscrit",
        "done": "Vous ne recevrez plus ces emails. Vous pouvez les réactiver depuis votre compte.",
        "invalid_title": "Ce lien ne fonctionne pas",
        "invalid": "Ce lien de désinscription n'est pas valide. Utilisez le lien d'un email récent, ou "
        "connectez-vous pour changer vos préférences d'email.",
        "expired_title": "Ce lien a expiré",
        "expired": "Ce lien de désinscription est trop ancien. Connectez-vous pour changer vos "
        "préférences d'email.",
    },
}


def _one_text(value: object) -> object:
    """The token as text: a repeated `token` (a list) or anything else is no token of ours, so it
    reaches `read_token` and gets the same 400 `invalid_token`, never a 422."""
    return value if value is None or isinstance(value, str) else "invalid"


TokenQuery = Annotated[
    str | None,
    BeforeValidator(_one_text),
    Query(
        description="the signed unsubscribe token of the email's link "
        f"(`[A-Za-z0-9_.-]`, at most {MAX_TOKEN_LENGTH} characters; anything else gets 400)",
    ),
]


def _page_responses(ok: str) -> dict[int, Any]:
    html = {"text/html": {"schema": {"type": "string"}}}

    def refusal(description: str) -> dict[str, Any]:
        # The error model, or the same as a page for a client that asks for HTML.
        json_error = {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
        return {"description": description, "content": {"application/json": json_error, **html}}

    return {
        200: {"description": ok, "content": html},
        400: refusal(
            "`invalid_token`: no token, or not a token of ours (malformed, altered, retired secret); "
            "a page when `Accept` names `text/html`"
        ),
        410: refusal(
            "`expired_token`: a genuine token whose lifetime is over; a page when `Accept` names `text/html`"
        ),
        503: errors()[503],
    }


@router.get(
    "/unsubscribe",
    summary="The unsubscribe link's page (changes nothing)",
    description="Public, no login: the token decides. Shows a page (fr/en: the member's locale, "
    "else `Accept-Language`) whose button posts to the same URL. Fetching it changes nothing.",
    responses=_page_responses("the confirmation page, with a form that posts"),
    tags=["email"],
    security=[{}],
)
def unsubscribe_page(token: TokenQuery = None) -> Response[Any]:
    member_id = _member_of(token)
    if isinstance(member_id, Response):
        return member_id
    language = _language(members.profile_locale(member_id))
    texts = TEXTS[language]
    form = (
        f'<form method="post" action="?token={escape(token or "", quote=True)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        f'<button type="submit">{escape(texts["button"])}</button></form>'
    )
    return _page(200, language, texts["title"], texts["confirm"], form)


@router.post(
    "/unsubscribe",
    summary="Unsubscribe from emails (RFC 8058 one-click)",
    description="Public, no login: the token decides. The body (`List-Unsubscribe=One-Click`, "
    "form-encoded, or empty) is not read. Sets `emailOptIn` to false and records when and how; "
    "idempotent: unsubscribing again is a success.",
    responses=_page_responses("unsubscribed (or already unsubscribed)"),
    tags=["email"],
    security=[{}],
)
def unsubscribe(token: TokenQuery = None) -> Response[Any]:
    member_id = _member_of(token)
    if isinstance(member_id, Response):
        return member_id
    locale = members.opt_out_of_email(member_id, source=OPT_OUT_SOURCE, now=utcnow())
    language = _language(locale)
    texts = TEXTS[language]
    return _page(200, language, texts["done_title"], texts["done"])


def _member_of(token: str | None) -> str | Response[Any]:
    """The member the token names, or the page refusing it."""
    try:
        return read_token(token, secret=notify_config().unsubscribe_secrets, now=utcnow())
    except InvalidUnsubscribeToken as problem:
        expired = problem.reason is TokenProblem.EXPIRED
        status, code = (410, "expired_token") if expired else (400, "invalid_token")
        language = _language(None)
        texts = TEXTS[language]
        title, message = (
            (texts["expired_title"], texts["expired"])
            if expired
            else (texts["invalid_title"], texts["invalid"])
        )
        if "text/html" in _header("accept").lower():
            return _page(status, language, title, message, code=code)
        refused = error_response(status, code, TEXTS["en"]["expired" if expired else "invalid"])
        refused.headers["Cache-Control"] = "no-store"
        return refused


def _language(locale: str | None) -> Language:
    """The member's locale when known, else the browser's first fr/en preference, else English."""
    if locale in ("fr", "en"):
        return locale  # type: ignore[return-value]  # narrowed by the test above
    header = _header("accept-language")
    ranked: list[tuple[float, int, Language]] = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, parameters = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in ("fr", "en"):
            continue
        weight = 1.0
        name, _, value = parameters.strip().partition("=")
        if name.strip() == "q":
            try:
                weight = float(value)
            except ValueError:
                weight = 0.0
        if weight > 0:
            ranked.append((-weight, position, primary))  # type: ignore[arg-type]  # fr or en
    return min(ranked)[2] if ranked else "en"


def _header(name: str) -> str:
    headers = router.current_event.headers or {}
    return next((str(value) for key, value in headers.items() if key.lower() == name), "")


def _page(
    status: int, language: Language, title: str, message: str, extra: str = "", *, code: str | None = None
) -> Response[Any]:
    """A small page, every text escaped; never cached (a token's answer is for its holder only)."""
    code_line = f"<p><small>{escape(code)}</small></p>" if code else ""
    body = (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{escape(title)}</title></head><body><main><h1>{escape(title)}</h1>"
        f"<p>{escape(message)}</p>{extra}{code_line}</main></body></html>"
    )
    headers = {
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
    }
    if code:
        headers["X-Error-Code"] = code
    return Response(status_code=status, content_type=HTML, body=body, headers=headers)
