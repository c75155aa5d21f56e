"""axe-core finds no WCAG 2.2 A/AA violation on any page type, in Japanese and English, on a
phone-sized screen with JavaScript on (axe itself is a script)."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

import flows
from conftest import axe_violations, navigate_by
from test_apply import NONE, resident

# Every page type the portal has, by a representative address. A start page of each assurance
# level, one with a fee and one with an attachment, since each shows different parts.
PAGES = {
    "home": ("/", 200),
    "catalog": ("/procedures", 200),
    "category": ("/procedures?category=gomi", 200),
    "search with results": ("/procedures?q=住民票", 200),
    "search without results": ("/procedures?q=存在しない手続きの名前", 200),
    "search refused": ("/procedures?q=" + "あ" * 101, 400),
    "start page, none": ("/procedures/sodai-gomi-shushu", 200),
    "start page, card-auth with a file": ("/procedures/houkago-jidou-club-moshikomi", 200),
    "start page, card-sign with a fee": ("/procedures/juminhyo-copy-request", 200),
    "sign-in": ("/sign-in?next=/procedures/juminhyo-copy-request", 200),
    "accessibility statement": ("/accessibility", 200),
    "404": ("/no-such-page", 404),
    "unknown procedure": ("/procedures/no-such-procedure", 404),
}


def with_lang(path: str, lang: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}lang={lang}"


@pytest.mark.parametrize("lang", ["ja", "en"])
@pytest.mark.parametrize("name", list(PAGES))
def test_no_axe_violations(page, name, lang):
    path, status = PAGES[name]
    response = page.goto(with_lang(path, lang))
    assert response is not None and response.status == status, f"{name}: {response and response.status}"
    assert page.locator("html").get_attribute("lang") == lang
    count, report = axe_violations(page)
    assert count == 0, f"{name} ({lang}):\n{report}"


def test_axe_reports_a_violation_it_should_find(page, server):
    """The check itself works: a page with an image without alternative text is caught."""
    page.goto("/accessibility")
    page.evaluate(
        """() => {
            const image = document.createElement('img');
            image.src = '/static/none.png';
            document.querySelector('main').append(image);
        }"""
    )
    count, report = axe_violations(page)
    assert count == 1 and "image-alt" in report, report


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_refused_post_page_has_no_axe_violations(page, lang):
    """The 403 page a form post gets when its session cookie is gone (another tab signed out,
    or the browser was closed): it says what happened, and passes axe."""
    page.goto(f"/sign-in?lang={lang}")
    page.context.clear_cookies(name="madoguchi_session")
    page.locator("#subject").fill("someone")
    answer = navigate_by(page, page.locator("form.dev-sign-in button[type=submit]"))
    assert answer is not None and answer.url.endswith("/sign-in/dev"), answer and answer.url
    assert answer.status == 403
    assert page.locator("html").get_attribute("lang") == lang
    count, report = axe_violations(page)
    assert count == 0, report


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_session_expired_page_has_no_axe_violations_and_leads_back_to_the_draft(page, lang):
    """The session ends while a draft is open (here: signed out, and the old cookie comes back,
    as a restored browser session or another tab would bring it): the page says so, passes axe,
    and its sign-in leads back to the draft's page."""
    subject = resident()
    flows.open_start_page(page, NONE)
    flows.start_application(page, NONE, subject)
    draft_page = urlparse(page.url).path
    old_cookies = page.context.cookies()

    # Signed out in this same tab: closing a second tab right after its sign-out navigation
    # once hung Chromium for minutes, and a second tab adds nothing the cookie replay doesn't.
    page.goto("/drafts")
    with page.expect_navigation():
        page.get_by_role("button", name="ログアウト").click()
    page.context.clear_cookies()
    page.context.add_cookies(old_cookies)

    response = page.goto(f"{draft_page}?lang={lang}")
    assert response is not None and response.status == 401
    assert page.locator("html").get_attribute("lang") == lang
    count, report = axe_violations(page)
    assert count == 0, report

    page.locator("main a.button").click()
    expect(page).to_have_url(re.compile(r"/sign-in\?next="))
    page.locator("#subject").fill(subject)
    page.locator("form.dev-sign-in button[type=submit]").click()
    expect(page).to_have_url(re.compile(re.escape(draft_page) + r"(\?lang=\w+)?$"))
    expect(page.get_by_role("heading", level=1)).to_be_visible()
