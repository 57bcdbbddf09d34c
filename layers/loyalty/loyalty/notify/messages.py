"""Emails to members, rendered without I/O: values and time come in, an `Email` value comes out.

An email is composed of a few blocks (paragraphs, labelled facts, one action link), rendered once
as plain text and once as HTML by the same code, so both parts always say the same thing. Every
string that reaches the HTML (the fixed wording included) goes through `html.escape`; no renderer
accepts markup. Member data never reaches a header except the recipient's address and display
name, and those go through `email.headerregistry.Address` after control characters are removed.
Subjects are fixed wording per locale.

A kind of email is a builder calling `compose(...)` with its own blocks. A bulk email (the expiry
reminder) also passes `unsubscribe_url`: the footer then links to it, and `to_mime` writes the
one-click unsubscribe headers of RFC 8058 (`List-Unsubscribe`, `List-Unsubscribe-Post`; ASCII,
checked, never folded into encoded words). Transactional emails (the claim outcomes) carry neither."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from email import policy
from email.errors import HeaderParseError, InvalidHeaderDefect
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import quote, urlencode, urlsplit

from loyalty.notify.errors import InvalidRecipient
from loyalty.notify.formats import Locale, format_date, format_points, pick_locale
from loyalty.notify.tags import member_tag

__all__ = [
    "Action",
    "Block",
    "Email",
    "Facts",
    "Paragraph",
    "Program",
    "Recipient",
    "checked_link",
    "claim_approved",
    "claim_matched",
    "claim_rejected",
    "compose",
    "points_expiring",
    "to_mime",
]

MAX_DISPLAY_NAME = 100
MAX_HEADER_VALUE = 900  # RFC 5322 allows 998 characters per line, the name included

# ---- the parties


@dataclass(frozen=True)
class Program:
    """The program as its emails present it: a display name and the base of every link."""

    name: str
    links_base_url: str

    def link(self, *segments: str, query: Mapping[str, str] | None = None) -> str:
        """An absolute URL under the base; each segment and query value is percent-encoded."""
        url = self.links_base_url.rstrip("/")
        if segments:
            url += "/" + "/".join(quote(segment, safe="") for segment in segments)
        elif not url.endswith("/"):
            url += "/"
        if query:
            url += "?" + urlencode(query)
        return url


@dataclass(frozen=True)
class Recipient:
    """The member as its profile stores it. `locale` is normalised (`fr-CA` → `fr`, unknown → `en`).
    `member_id`, when given, rides with the email as an SES tag, so that a bounce or a complaint
    names the member it concerns (`loyalty.notify.feedback`)."""

    address: str
    name: str | None = None
    locale: str | None = None
    member_id: str | None = None

    @property
    def language(self) -> Locale:
        return pick_locale(self.locale)


# ---- the email value


@dataclass(frozen=True)
class Email:
    """One rendered message to one member, ready for `to_mime` or `loyalty.notify.ses.send`.

    `to_address` is checked and its domain IDNA-encoded; `to_name` is one line, without control
    characters; `headers` are extra headers (name, value), ASCII only, none that we set ourselves.
    `unsubscribe_url` (bulk emails only) is an absolute http(s) URL that `to_mime` puts in
    `List-Unsubscribe`, with `List-Unsubscribe-Post: List-Unsubscribe=One-Click`. `member_id` is the
    member the email is about: `ses.send` tags the message with it (never a header of the email)."""

    kind: str
    to_address: str
    to_name: str
    subject: str
    text: str
    html: str
    locale: Locale
    headers: tuple[tuple[str, str], ...] = field(default=())
    unsubscribe_url: str | None = None
    member_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "to_address", checked_address(self.to_address))
        object.__setattr__(self, "to_name", single_line(self.to_name)[:MAX_DISPLAY_NAME].strip())
        for name, value in self.headers:
            _check_extra_header(name, value)
        if self.unsubscribe_url is not None:
            checked_link(self.unsubscribe_url)
        if self.member_id is not None:
            member_tag(self.member_id)  # a ValueError now rather than a refusal by SES at send time


_ADDRESS_SPEC = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def checked_address(address: str) -> str:
    """The address as it will go on the wire, or `InvalidRecipient`: one `local@domain`, ASCII local
    part (SES does not send SMTPUTF8), an internationalised domain encoded in IDNA."""
    candidate = address.strip()
    if not _ADDRESS_SPEC.match(candidate) or any(_is_control(char) for char in candidate):
        raise InvalidRecipient("the member's email address is not an address")
    local, _, domain = candidate.rpartition("@")
    if not local.isascii():
        raise InvalidRecipient("the member's email address has a non-ASCII local part")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
        parsed = Address(addr_spec=f"{local}@{ascii_domain}")
    except (UnicodeError, ValueError, HeaderParseError, InvalidHeaderDefect, IndexError) as bad:
        raise InvalidRecipient("the member's email address is not an address") from bad
    return parsed.addr_spec


def single_line(text: str | None) -> str:
    """`text` on one line: control characters, line and paragraph separators become spaces."""
    cleaned = "".join(" " if _is_control(char) else char for char in text or "")
    return " ".join(cleaned.split())


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Zl", "Zp")


MAX_LINK_LENGTH = 850  # `List-Unsubscribe: <…>` on one line stays within MAX_HEADER_VALUE
# Characters that would end the URL inside `<…>` or a list of URLs, or quote in HTML.
_LINK_FORBIDDEN = frozenset('<>"\\`, {}|^')


def checked_link(url: str) -> str:
    """`url` if it can go in a header and an `href` as is: absolute `https://` (or `http://`, for the
    local mode), printable ASCII without spaces, `<`, `>`, `"` or `,`, at most MAX_LINK_LENGTH
    characters; else ValueError. Our URLs are built by `Program.link`; this is the last check."""
    if (
        not isinstance(url, str)
        or not url.isascii()
        or len(url) > MAX_LINK_LENGTH
        or any(not char.isprintable() or char in _LINK_FORBIDDEN for char in url)
    ):
        raise ValueError("a link must be printable ASCII without spaces, quotes, <, > or commas, and short")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as bad:
        raise ValueError("a link must be an absolute http(s) URL") from bad
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError("a link must be an absolute http(s) URL")
    return url


_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 ftext: printable ASCII but ':'
# Headers `to_mime` writes, or that would add recipients or change the structure: never extra.
_RESERVED_HEADERS = frozenset(
    {"from", "to", "cc", "bcc", "subject", "date", "message-id", "mime-version", "sender",
     "reply-to", "return-path", "content-language", "list-unsubscribe", "list-unsubscribe-post"}
)  # fmt: skip


def _check_extra_header(name: str, value: str) -> None:
    lowered = name.lower()
    if not _HEADER_NAME.match(name) or lowered in _RESERVED_HEADERS or lowered.startswith("content-"):
        raise ValueError(f"{name!r} cannot be an extra header")
    if not value.isascii() or any(_is_control(char) and char != "\t" for char in value):
        raise ValueError(f"the value of {name} must be printable ASCII on one line")
    if len(name) + 2 + len(value) > MAX_HEADER_VALUE:
        raise ValueError(f"the value of {name} is too long for one header line")


# ---- blocks, rendered as text and as HTML


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Facts:
    """Labelled values, one per line (a two-column table in HTML)."""

    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Action:
    """One link the member may follow (a button in HTML). `url` comes from `Program.link`."""

    label: str
    url: str


Block = Paragraph | Facts | Action

_WORDING: dict[Locale, dict[str, str]] = {
    "en": {
        "hello": "Hello {name},",
        "hello_anonymous": "Hello,",
        "signature": "The {program} team",
        "footer": "You are receiving this email about your {program} account.",
        "unsubscribe_before": "To stop receiving reminders about expiring points, ",
        "unsubscribe_link": "unsubscribe",
        "unsubscribe_after": ".",
    },
    "fr": {
        "hello": "Bonjour {name},",
        "hello_anonymous": "Bonjour,",
        "signature": "L'équipe {program}",
        "footer": "Vous recevez cet e-mail au sujet de votre compte {program}.",
        "unsubscribe_before": "Pour ne plus recevoir de rappels sur vos points qui expirent, ",
        "unsubscribe_link": "désabonnez-vous",
        "unsubscribe_after": ".",
    },
}


@dataclass(frozen=True)
class Footer:
    """The small print: why the member gets this email and, on bulk emails, how to stop them
    (`unsubscribe`: the words before the link, the link's words, the words after, the URL)."""

    text: str
    unsubscribe: tuple[str, str, str, str] | None = None


def compose(
    kind: str,
    recipient: Recipient,
    program: Program,
    *,
    subject: str,
    blocks: Sequence[Block],
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    unsubscribe_url: str | None = None,
) -> Email:
    """The one renderer: greeting, `blocks`, signature and footer, as text and HTML, in the
    recipient's locale. `subject` and the blocks' wording are the caller's fixed text for that
    locale; member values inside them are escaped here, in HTML, like everything else.

    `unsubscribe_url` makes it a bulk email: the footer links to it (text and HTML) and the `Email`
    carries it, so `to_mime` adds the one-click unsubscribe headers. The body link and the headers
    come from this one argument, so one is never present without the other."""
    locale = recipient.language
    words = _WORDING[locale]
    name = single_line(recipient.name)[:MAX_DISPLAY_NAME].strip()
    greeting = words["hello"].format(name=name) if name else words["hello_anonymous"]
    closing = [Paragraph(words["signature"].format(program=program.name))]
    footer = Footer(words["footer"].format(program=program.name))
    if unsubscribe_url is not None:
        footer = Footer(
            footer.text,
            unsubscribe=(
                words["unsubscribe_before"],
                words["unsubscribe_link"],
                words["unsubscribe_after"],
                checked_link(unsubscribe_url),
            ),
        )
    everything = [Paragraph(greeting), *blocks, *closing]
    pairs = tuple(headers.items()) if isinstance(headers, Mapping) else tuple(headers)
    return Email(
        kind=kind,
        to_address=recipient.address,
        to_name=name,
        subject=subject,
        text=_render_text(everything, footer, locale),
        html=_render_html(everything, footer, subject=subject, locale=locale),
        locale=locale,
        headers=pairs,
        unsubscribe_url=unsubscribe_url,
        member_id=recipient.member_id,
    )


# French puts a (no-break) space before a colon.
_LABEL_SEPARATOR: dict[Locale, str] = {"en": ": ", "fr": "\u00a0: "}


def _render_text(blocks: Sequence[Block], footer: Footer, locale: Locale) -> str:
    colon = _LABEL_SEPARATOR[locale]
    chunks: list[str] = []
    for block in blocks:
        if isinstance(block, Paragraph):
            chunks.append(block.text)
        elif isinstance(block, Facts):
            chunks.append("\n".join(f"{label}{colon}{value}" for label, value in block.rows))
        else:
            chunks.append(f"{block.label}{colon}{block.url}")
    small_print = f"--\n{footer.text}"
    if footer.unsubscribe is not None:
        before, link, _after, url = footer.unsubscribe
        small_print += f"\n{before}{link}{colon}{url}"
    chunks.append(small_print)
    return "\n\n".join(chunks) + "\n"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _render_html(blocks: Sequence[Block], footer: Footer, *, subject: str, locale: Locale) -> str:
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Paragraph):
            body.append(f'<p style="margin:0 0 16px">{_e(block.text)}</p>')
        elif isinstance(block, Facts):
            rows = "".join(
                '<tr><th scope="row" style="text-align:left;padding:4px 16px 4px 0;font-weight:normal;'
                f'color:#555">{_e(label)}</th>'
                f'<td style="padding:4px 0;font-weight:bold">{_e(value)}</td></tr>'
                for label, value in block.rows
            )
            body.append(
                f'<table role="presentation" style="margin:0 0 16px;border-collapse:collapse">{rows}</table>'
            )
        else:
            body.append(
                f'<p style="margin:0 0 16px"><a href="{_e(block.url)}" style="display:inline-block;'
                f'padding:10px 18px;background:#1a56db;color:#ffffff;text-decoration:none;border-radius:4px">'
                f"{_e(block.label)}</a></p>"
            )
    small_print = f'<p style="margin:0;font-size:12px;color:#666">{_e(footer.text)}</p>\n'
    if footer.unsubscribe is not None:
        before, link, after, url = footer.unsubscribe
        small_print += (
            f'<p style="margin:8px 0 0;font-size:12px;color:#666">{_e(before)}'
            f'<a href="{_e(url)}" style="color:#666">{_e(link)}</a>{_e(after)}</p>\n'
        )
    return (
        f'<!DOCTYPE html>\n<html lang="{locale}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(subject)}</title>\n</head>\n"
        '<body style="margin:0;padding:24px;font-family:Arial,Helvetica,sans-serif;font-size:16px;'
        'line-height:1.5;color:#111">\n'
        + "\n".join(body)
        + '\n<hr style="border:none;border-top:1px solid #ddd;margin:24px 0 12px">\n'
        + small_print
        + "</body>\n</html>\n"
    )


# ---- the claim outcomes (issue 7)

_CLAIMS: dict[Locale, dict[str, str]] = {
    "en": {
        "approved_subject": "Your points claim was approved",
        "approved_intro": "Good news: we have credited {points} for your purchase {reference} of {date}.",
        "rejected_subject": "Your points claim was not accepted",
        "rejected_intro": "We could not accept your claim for the purchase {reference}.",
        "rejected_help": "If you have a question about this decision, please contact our customer service.",
        "matched_subject": "Your missing points have been credited",
        "matched_intro": (
            "Good news: our partner has now credited your purchase {reference}, so your claim is closed."
        ),
        "purchase": "Purchase",
        "purchase_date": "Purchase date",
        "points_credited": "Points credited",
        "balance": "New balance",
        "expires": "Expiry of these points",
        "reason": "Reason",
        "see_points": "See my points",
    },
    "fr": {
        "approved_subject": "Votre réclamation de points est acceptée",
        "approved_intro": (
            "Bonne nouvelle\u00a0: nous avons crédité {points} pour votre achat {reference} du {date}."
        ),
        "rejected_subject": "Votre réclamation de points n'a pas été acceptée",
        "rejected_intro": "Nous n'avons pas pu accepter votre réclamation pour l'achat {reference}.",
        "rejected_help": "Pour toute question sur cette décision, contactez notre service client.",
        "matched_subject": "Vos points manquants ont été crédités",
        "matched_intro": (
            "Bonne nouvelle\u00a0: notre partenaire a maintenant crédité votre achat {reference}, "
            "votre réclamation est donc close."
        ),
        "purchase": "Achat",
        "purchase_date": "Date de l'achat",
        "points_credited": "Points crédités",
        "balance": "Nouveau solde",
        "expires": "Expiration de ces points",
        "reason": "Motif",
        "see_points": "Voir mes points",
    },
}


def claim_approved(
    recipient: Recipient,
    program: Program,
    *,
    points: int,
    purchase_reference: str,
    purchase_date: date,
    balance: int,
    expires_on: date | None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
) -> Email:
    """A claim was approved: the points credited, for which purchase, the balance after, and when
    those points expire. Dates are calendar dates in the program's timezone; `expires_on` is the
    last day the points can be used (`loyalty.domain.expiry.last_day(lot.expires_at, tz)`), not
    the date of the `expiresAt` instant, which is the midnight after it; None (points that never
    expire, or no lot: the points settled points owed) leaves the line out."""
    locale = recipient.language
    words = _CLAIMS[locale]
    rows = [
        (words["points_credited"], format_points(points, locale)),
        (words["purchase"], single_line(purchase_reference)),
        (words["purchase_date"], format_date(purchase_date, locale)),
        (words["balance"], format_points(balance, locale)),
    ]
    if expires_on is not None:
        rows.append((words["expires"], format_date(expires_on, locale)))
    facts = Facts(tuple(rows))
    intro = words["approved_intro"].format(
        points=format_points(points, locale),
        reference=single_line(purchase_reference),
        date=format_date(purchase_date, locale),
    )
    return compose(
        "claim_approved",
        recipient,
        program,
        subject=words["approved_subject"],
        blocks=[Paragraph(intro), facts, Action(words["see_points"], program.link())],
        headers=headers,
    )


def claim_rejected(
    recipient: Recipient,
    program: Program,
    *,
    reason: str,
    purchase_reference: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
) -> Email:
    """A claim was rejected: for which purchase, and the reason as written (support's words or the
    automatic reason), shown as text."""
    locale = recipient.language
    words = _CLAIMS[locale]
    reference = single_line(purchase_reference)
    return compose(
        "claim_rejected",
        recipient,
        program,
        subject=words["rejected_subject"],
        blocks=[
            Paragraph(words["rejected_intro"].format(reference=reference)),
            Facts(((words["purchase"], reference), (words["reason"], single_line(reason)))),
            Paragraph(words["rejected_help"]),
            Action(words["see_points"], program.link()),
        ],
        headers=headers,
    )


def claim_matched(
    recipient: Recipient,
    program: Program,
    *,
    purchase_reference: str,
    purchase_date: date | None = None,
    points: int | None = None,
    balance: int | None = None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
) -> Email:
    """A pending claim closed itself: the partner's earn for that purchase arrived and credited it.
    The date, points and balance are shown when the caller knows them."""
    locale = recipient.language
    words = _CLAIMS[locale]
    reference = single_line(purchase_reference)
    rows = [(words["purchase"], reference)]
    if purchase_date is not None:
        rows.append((words["purchase_date"], format_date(purchase_date, locale)))
    if points is not None:
        rows.append((words["points_credited"], format_points(points, locale)))
    if balance is not None:
        rows.append((words["balance"], format_points(balance, locale)))
    return compose(
        "claim_matched",
        recipient,
        program,
        subject=words["matched_subject"],
        blocks=[
            Paragraph(words["matched_intro"].format(reference=reference)),
            Facts(tuple(rows)),
            Action(words["see_points"], program.link()),
        ],
        headers=headers,
    )


# ---- the expiry reminder (issue 8)

_REMINDERS: dict[Locale, dict[str, str]] = {
    "en": {
        "subject": "Some of your points will expire soon",
        "intro": (
            "Some points on your {program} account will expire soon. Here is how many, with the last "
            "day you can use them:"
        ),
        "until": "Until {date}",
        "in_all": "In all",
        "balance": "Your balance on {date}",
        "advice": "Use them by then so that you do not lose them.",
        "use_points": "Use my points",
    },
    "fr": {
        "subject": "Une partie de vos points va bientôt expirer",
        "intro": (
            "Certains points de votre compte {program} vont bientôt expirer. Voici combien, avec le "
            "dernier jour pour les utiliser\u00a0:"
        ),
        "until": "Jusqu'au {date}",
        "in_all": "Au total",
        "balance": "Votre solde au {date}",
        "advice": "Utilisez-les d'ici là pour ne pas les perdre.",
        "use_points": "Utiliser mes points",
    },
}


def points_expiring(
    recipient: Recipient,
    program: Program,
    *,
    rows: Iterable[tuple[date, int]],
    balance: int,
    unsubscribe_url: str,
    as_of: date,
) -> Email:
    """The expiry reminder: how many points expire on which dates, and the balance on `as_of`.

    `rows` are (last day the points can be used, points) — `last_day(lot.expires_at, tz)` as for
    the claims, a calendar date in the program's timezone, not before `as_of` — in any order; they
    are listed by date, points of the same day added up, with a total when there are several days.
    A reminder is a bulk email: it links to `unsubscribe_url` in its footer and carries the
    one-click unsubscribe headers. ValueError for no rows, points below 1 or a date already past."""
    locale = recipient.language
    words = _REMINDERS[locale]
    if isinstance(as_of, datetime):
        raise TypeError("as_of is a date in the program's timezone, not a datetime")
    due: dict[date, int] = {}
    for day, points in rows:
        if isinstance(day, datetime):
            raise TypeError("expiry dates are dates in the program's timezone, not datetimes")
        if isinstance(points, bool) or not isinstance(points, int) or points < 1:
            raise ValueError(f"a reminder row needs a positive number of points, got {points!r}")
        if day < as_of:
            raise ValueError(f"points expiring on {day} are already expired on {as_of}")
        due[day] = due.get(day, 0) + points
    if not due:
        raise ValueError("a reminder needs at least one expiry date")
    listed = [
        (words["until"].format(date=format_date(day, locale)), format_points(due[day], locale))
        for day in sorted(due)
    ]
    if len(listed) > 1:
        listed.append((words["in_all"], format_points(sum(due.values()), locale)))
    balance_row = (words["balance"].format(date=format_date(as_of, locale)), format_points(balance, locale))
    return compose(
        "points_expiring",
        recipient,
        program,
        subject=words["subject"],
        blocks=[
            Paragraph(words["intro"].format(program=program.name)),
            Facts(tuple(listed)),
            Facts((balance_row,)),
            Paragraph(words["advice"]),
            Action(words["use_points"], program.link()),
        ],
        unsubscribe_url=unsubscribe_url,
    )


# ---- MIME

# Bodies are encoded (quoted-printable, 76 columns) with the SMTP policy; headers are written with a
# line limit of 998 (RFC 5322's hard limit) so that a long `List-Unsubscribe` URL stays one ASCII
# token: at 78 columns Python would rewrite it as RFC 2047 encoded words, which mailbox providers
# do not decode in that header.
_CONTENT_POLICY = policy.SMTP
_WIRE_POLICY = policy.SMTP.clone(max_line_length=998)


def to_mime(email: Email, *, sender_address: str, sender_name: str, date: datetime | None = None) -> bytes:
    """The message as SES's raw content: `multipart/alternative` (text, then HTML), UTF-8,
    quoted-printable, CRLF line ends, 7-bit. `date` (an aware instant) becomes the `Date` header;
    SES adds `Message-ID`. The same arguments always give the same bytes."""
    message = EmailMessage(policy=_CONTENT_POLICY)
    message["From"] = Address(display_name=single_line(sender_name), addr_spec=sender_address)
    message["To"] = Address(display_name=email.to_name, addr_spec=email.to_address)
    message["Subject"] = email.subject
    if date is not None:
        message["Date"] = format_datetime(date)
    if email.unsubscribe_url is not None:
        # RFC 8058: one HTTPS URI in angle brackets, and the POST body the mailbox provider will
        # send to it. The URL carries the member's signed token: the POST has no other context.
        message["List-Unsubscribe"] = f"<{checked_link(email.unsubscribe_url)}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in email.headers:
        message[name] = value
    message.set_content(email.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(email.html, subtype="html", charset="utf-8", cte="quoted-printable")
    message["Content-Language"] = email.locale  # after the content: setting it clears Content-*
    # A boundary derived from the content keeps the function pure (same email, same bytes); it
    # starts with "=_", which quoted-printable parts can never contain.
    digest = hashlib.sha256(f"{email.text}\0{email.html}".encode()).hexdigest()[:40]
    message.set_boundary(f"=_{digest}")
    return message.as_bytes(policy=_WIRE_POLICY)
