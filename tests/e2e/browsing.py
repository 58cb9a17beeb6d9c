"""Driving the Streamlit dashboard in a real browser: waiting, checking, recording."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page

PROJECT = Path(__file__).resolve().parents[2]
SCREENSHOTS = PROJECT / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

# The script has finished its run (Streamlit sets this on the app's root).
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
BUSY = '[data-testid="stSpinner"], [data-testid="stSkeleton"]'
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def settle(page: Page, timeout_ms: float = 120_000) -> None:
    """Wait until the script run is over and no spinner or placeholder is left."""
    page.wait_for_selector(IDLE, timeout=timeout_ms)
    page.locator(BUSY).first.wait_for(state="detached", timeout=timeout_ms)
    page.wait_for_selector(IDLE, timeout=timeout_ms)


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    settle(page)


# The refresh-interval choice is disabled while auto-refresh is off; WCAG 1.4.3 sets no
# contrast minimum for inactive controls, but axe cannot tell its label is one.
INACTIVE_AT_REST = [".st-key-refresh_s"]


def at_rest(page: Page) -> None:
    """Switch the sidebar's auto-refresh off, so the page stops re-running on its own.

    While a rerun is under way Streamlit greys the old elements out, which is what a
    screenshot or a contrast check would then see. Check such a page with
    `exclude=INACTIVE_AT_REST`.
    """
    switch = widget(page, "auto_refresh").get_by_role("switch")
    if switch.is_checked():
        widget(page, "auto_refresh").locator("label").click()
        settle(page)


def problems(page: Page) -> list[str]:
    """What a healthy page never shows: a traceback box, or the API-down banner."""
    found = []
    exceptions = page.locator('[data-testid="stException"]')
    if exceptions.count():
        found.append(f"exception box: {exceptions.first.inner_text()[:500]}")
    if page.get_by_text("Prefect API unavailable").count():
        found.append("the 'Prefect API unavailable' banner")
    return found


def serious_violations(page: Page, axe_script: Path, exclude: list[str] = ()) -> list[dict]:
    """axe-core's WCAG 2.0/2.1 A and AA violations of impact serious or critical.

    `exclude`: CSS selectors of parts not to check.
    """
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(axe_script))
    violations = page.evaluate(
        """async ([tags, exclude]) => {
            const context = {include: [document], exclude: exclude.map(s => [s])};
            const result = await axe.run(context, {runOnly: {type: 'tag', values: tags}});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.slice(0, 5).map(n => n.target.join(' ')),
            }));
        }""",
        [WCAG_AA, list(exclude)],
    )
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def describe(violations: list[dict]) -> str:
    return json.dumps(violations, indent=2)


def screenshot(page: Page, name: str) -> Path:
    """A full-page PNG named after the page and the viewport width."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{page.viewport_size['width']}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def poll(what: str, check: Callable[[], object], timeout_s: float, every_s: float = 2.0):
    """Call `check` until it returns something truthy; fail with `what` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)


def widget(page: Page, key: str):
    """The element of the widget with Streamlit key `key` (Streamlit's class for it)."""
    return page.locator(f".st-key-{re.sub(r'[^a-zA-Z0-9_-]', '-', key.strip())}")


def choose(page: Page, key: str, option: str, exact: bool = True) -> None:
    """Pick `option` (its label, or part of it) in the selectbox with key `key`."""
    widget(page, key).get_by_role("combobox").click()
    page.get_by_role("option", name=option, exact=exact).click()
    settle(page)


def type_into(page: Page, key: str, text: str) -> None:
    """Replace the text input's value and commit it (Enter), as a user does."""
    field = widget(page, key).locator("input")
    field.fill(text)
    field.press("Enter")
    settle(page)


# ---- layout and data checks that need a browser ---------------------------------------

WIDE = {"width": 1440, "height": 900}


def dataframe_rows(frame, timeout_ms: float = 30_000) -> list[dict[str, str]]:
    """The rows of an st.dataframe (`frame`: its stDataFrame locator) as header → text.

    The grid draws its cells on a canvas; the canvas holds an accessible table of the
    rows and columns in view, which is what this reads (all of a small frame's rows; the
    columns scrolled out of view are missing). The grid draws after the script run ends:
    this waits for its first row.
    """
    frame.locator('table[role="grid"] tbody tr').first.wait_for(
        state="attached", timeout=timeout_ms
    )
    return frame.evaluate(
        """frame => {
            const table = frame.querySelector('table[role="grid"]');
            if (!table) return [];
            const text = el => (el.textContent || '').trim();
            const heads = [...table.querySelectorAll('thead th')].map(text);
            return [...table.querySelectorAll('tbody tr')].map(tr => {
                const row = {};
                [...tr.querySelectorAll('td')].forEach((td, i) => {
                    row[heads[i] ?? i] = text(td);
                });
                return row;
            });
        }"""
    )


def cut_texts(page: Page, selector: str) -> list[str]:
    """Texts of the elements matching `selector` that are cut: wider than their box
    (an ellipsis or a clip, in the element or any element inside it), or ending in '…'."""
    return page.evaluate(
        """selector => [...document.querySelectorAll(selector)].flatMap(el => {
            const text = (el.textContent || '').trim();
            const boxes = [el, ...el.querySelectorAll('*')];
            const clipped = boxes.some(b => b.clientWidth > 0 && b.scrollWidth > b.clientWidth + 1);
            return clipped || text.endsWith('…') ? [text] : [];
        })""",
        selector,
    )


def progress_fill_colours(page: Page) -> list[str]:
    """The computed background colour of each st.progress bar's filled part.

    The filled part is the innermost element of the bar with a background of its own
    (the track is its parent).
    """
    return page.evaluate(
        """() => [...document.querySelectorAll('[data-testid="stProgress"] [role="progressbar"]')]
            .map(bar => {
                const painted = [bar, ...bar.querySelectorAll('*')].filter(el => {
                    const colour = getComputedStyle(el).backgroundColor;
                    return colour && colour !== 'transparent' && colour !== 'rgba(0, 0, 0, 0)';
                });
                return painted.length ? getComputedStyle(painted.at(-1)).backgroundColor : '';
            })"""
    )


def hue_and_saturation(css_colour: str) -> tuple[float, float]:
    """HSL hue (degrees) and saturation (0–1) of an `rgb(…)`/`rgba(…)` colour."""
    red, green, blue = (int(v) / 255 for v in re.findall(r"[\d.]+", css_colour)[:3])
    high, low = max(red, green, blue), min(red, green, blue)
    if high == low:
        return 0.0, 0.0
    lightness = (high + low) / 2
    spread = high - low
    saturation = spread / (1 - abs(2 * lightness - 1))
    if high == red:
        hue = 60 * (((green - blue) / spread) % 6)
    elif high == green:
        hue = 60 * ((blue - red) / spread + 2)
    else:
        hue = 60 * ((red - green) / spread + 4)
    return hue, saturation


def is_red(css_colour: str) -> bool:
    """A colour people read as red (alarm): hue within 20° of red, and not greyish."""
    hue, saturation = hue_and_saturation(css_colour)
    return saturation >= 0.3 and (hue <= 20 or hue >= 340)
