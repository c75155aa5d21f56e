"""What a resident sees at a phone's width, beyond what axe checks."""

from __future__ import annotations


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


def test_nothing_is_wider_than_the_phone(page):
    """No page scrolls sideways at 390 px (a long title or URL wraps instead)."""
    for path in ["/", "/procedures", "/procedures/juminhyo-copy-request", "/accessibility"]:
        page.goto(path)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"{path}: {width}px wide"
