"""The support console's static files, read without a browser: the palette passes WCAG AA, and no
script hands data to an HTML parser (issue #10)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CONSOLE = Path(__file__).resolve().parents[2] / "console"

# (text, background, minimum ratio) for every pair the stylesheet puts together: 4.5:1 for text
# (WCAG 2.2 AA, 1.4.3), 3:1 for the focus ring against what it surrounds (1.4.11).
PAIRS = [
    ("--text", "--bg", 4.5),
    ("--muted", "--bg", 4.5),
    ("--text", "--surface", 4.5),
    ("--muted", "--surface", 4.5),
    ("--accent", "--bg", 4.5),
    ("--accent-text", "--accent", 4.5),
    ("--danger-text", "--danger", 4.5),
    ("--bar-text", "--bar-bg", 4.5),
    ("--ok-text", "--ok-bg", 4.5),
    ("--error-text", "--error-bg", 4.5),
    ("--warn-text", "--warn-bg", 4.5),
    ("--focus", "--bg", 3.0),
    ("--focus", "--surface", 3.0),
    ("--line", "--bg", 3.0),
]


def palette() -> dict[str, str]:
    root = re.search(r":root\s*{(.*?)}", (CONSOLE / "style.css").read_text(), re.DOTALL)
    assert root is not None
    return dict(re.findall(r"(--[a-z-]+):\s*(#[0-9a-fA-F]{6})\s*;", root.group(1)))


def luminance(colour: str) -> float:
    """Relative luminance (WCAG 2.2), from an `#rrggbb` sRGB colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str) -> float:
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_the_contrast_formula_gives_the_known_ratios() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic near miss


@pytest.mark.parametrize(("text", "background", "minimum"), PAIRS)
def test_each_colour_pair_of_the_console_passes_wcag_aa(text: str, background: str, minimum: float) -> None:
    colours = palette()
    ratio = contrast(colours[text], colours[background])
    assert ratio >= minimum, f"{text} on {background}: {ratio:.2f}:1 < {minimum}:1"


def test_the_focus_ring_on_the_dark_bar_is_visible() -> None:
    ring = re.search(
        r"\.bar :focus-visible\s*{\s*outline-color:\s*(#[0-9a-fA-F]{6})", (CONSOLE / "style.css").read_text()
    )
    assert ring is not None
    assert contrast(ring.group(1), palette()["--bar-bg"]) >= 3.0


def test_no_script_hands_text_to_an_html_parser() -> None:
    # Member-entered text (names, stores, reasons) must reach the page as text only.
    sinks = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|createContextualFragment|eval\("
    )
    scripts = sorted(CONSOLE.rglob("*.js"))
    assert scripts
    for script in scripts:
        for number, line in enumerate(script.read_text().splitlines(), start=1):
            code = line.split("//", 1)[0]  # the comments may name what the code avoids
            assert not sinks.search(code), f"{script.relative_to(CONSOLE)}:{number}: {line.strip()}"


def test_the_page_has_no_inline_script_style_or_handler() -> None:
    page = (CONSOLE / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert not re.search(r"<style\b|\sstyle=|\son[a-z]+\s*=", page)
