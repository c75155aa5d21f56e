"""What a resident sees at a phone's width, beyond what axe checks."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from test_accessibility import PAGES, with_lang


def test_category_underline_ends_with_the_name(page):
    """The underline of a category link covers the category's name and stops there: not the
    count, whose full-width ）has a blank half inside the glyph, nor any space."""
    page.goto("/")
    links = page.locator(".categories a")
    assert links.count() > 10
    for index in range(links.count()):
        underlined = links.nth(index).evaluate(
            """link => {
                // The text that the link's own underline is drawn under: every text node that
                // is not inside an inline block (underlines do not reach into those).
                const walker = document.createTreeWalker(link, NodeFilter.SHOW_TEXT);
                let text = '';
                for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                    let inBlock = false;
                    for (let el = node.parentElement; el !== link; el = el.parentElement) {
                        if (getComputedStyle(el).display !== 'inline') inBlock = true;
                    }
                    if (!inBlock) text += node.textContent;
                }
                return text;
            }"""
        )
        assert underlined.strip() == underlined, repr(underlined)
        assert not underlined.endswith(("）", ")")), repr(underlined)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_pages_reflow_at_320_px(page, lang):
    """WCAG 1.4.10: at 320 CSS px (a 1280 px window zoomed to 400%) no page scrolls sideways;
    long titles, English words and addresses wrap."""
    page.set_viewport_size({"width": 320, "height": 640})
    for path, _ in PAGES.values():
        page.goto(with_lang(path, lang))
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 320, f"{path} ({lang}): {width}px wide"


def test_skip_link_is_the_first_stop_and_moves_to_the_content(page):
    page.goto("/procedures/juminhyo-copy-request")
    page.keyboard.press("Tab")
    skip = page.locator(":focus")
    expect(skip).to_have_text("本文へ移動")
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator(":focus")).to_have_id("main")
    page.keyboard.press("Tab")
    # The next stop is inside the main content, not back in the header.
    assert page.evaluate("() => document.querySelector('main').contains(document.activeElement)")
