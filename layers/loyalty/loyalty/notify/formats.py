"""Numbers, dates and plurals as each supported locale writes them: no I/O, no locale database.

Only `fr` and `en` are supported (SPEC §7), so a few rules written out beat a CLDR dependency:
`1,250` / `1 250` (narrow no-break space, U+202F, as CLDR writes French), `24 November 2026` /
`24 novembre 2026` (`1er` for the first of the month in French)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal, get_args

Locale = Literal["en", "fr"]
LOCALES: tuple[Locale, ...] = get_args(Locale)
DEFAULT_LOCALE: Locale = "en"

NARROW_NO_BREAK_SPACE = "\u202f"

_GROUP_SEPARATOR: dict[Locale, str] = {"en": ",", "fr": NARROW_NO_BREAK_SPACE}

_MONTHS: dict[Locale, tuple[str, ...]] = {
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "fr": (
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ),
}


def pick_locale(value: str | None) -> Locale:
    """The member's locale as we can write it: `fr`, `fr-CA`, `FR_be` → `fr`; anything else → `en`."""
    primary = (value or "").strip().replace("_", "-").split("-", 1)[0].lower()
    for locale in LOCALES:
        if primary == locale:
            return locale
    return DEFAULT_LOCALE


def format_number(value: int, locale: Locale) -> str:
    """An integer with thousands grouped: `1,250` (en), `1 250` with U+202F (fr)."""
    digits = f"{abs(value):,}".replace(",", _GROUP_SEPARATOR[locale])
    return f"-{digits}" if value < 0 else digits


def format_points(value: int, locale: Locale) -> str:
    """`1 point`, `1,250 points`; French keeps 0 and 1 singular (`0 point`)."""
    singular = abs(value) <= 1 if locale == "fr" else abs(value) == 1
    return f"{format_number(value, locale)} {'point' if singular else 'points'}"


def format_date(day: date, locale: Locale) -> str:
    """`24 November 2026` / `24 novembre 2026`, `1er janvier 2027`.

    Takes a calendar date, already in the program's timezone: an instant would be ambiguous
    (23:00 UTC on the 23rd is the 24th in Paris), so a `datetime` is refused."""
    if isinstance(day, datetime):
        raise TypeError("format_date takes a date in the program's timezone, not a datetime")
    number = "1er" if locale == "fr" and day.day == 1 else str(day.day)
    return f"{number} {_MONTHS[locale][day.month - 1]} {day.year}"
