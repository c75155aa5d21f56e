"""A resident never sees another resident's application or draft, whatever address they type."""

from __future__ import annotations

import re

import pytest

import flows
from conftest import _context, navigate_by
from test_apply import NONE, resident


@pytest.fixture
def other_page(browser, server):
    """A second phone: another browser with its own cookies."""
    context = _context(browser, server, javascript=True)
    yield context.new_page()
    context.close()


def test_another_residents_application_and_draft_stay_hidden(page, other_page, tmp_path):
    # Resident A sends one application and keeps a draft of another.
    reference = flows.apply(page, NONE, resident(), tmp_path)
    received_url = page.url
    assert re.search(r"/submissions/[^/]+/received$", received_url)
    flows.open_start_page(page, NONE)
    navigate_by(page, page.get_by_role("link", name="申請をはじめる"))
    navigate_by(page, page.get_by_role("button", name="新しく申請をはじめる"))
    draft_url = page.url
    assert re.search(r"/drafts/[^/]+/pages/\d+$", draft_url)
    draft_title = page.get_by_role("heading", level=1).inner_text()

    # Resident B signs in on another phone and types A's addresses.
    other_page.goto("/sign-in?next=/drafts")
    flows.sign_in_with_dev_card(other_page, resident())
    for url in (received_url, draft_url, draft_url.rsplit("/pages/", 1)[0] + "/confirm"):
        response = other_page.goto(url)
        assert response is not None and response.status in (403, 404), f"{url}: {response.status}"
        text = other_page.locator("main").inner_text()
        assert reference not in text, url
        assert draft_title not in text, url
    # Nor does A's draft appear in B's list.
    other_page.goto("/drafts")
    assert flows.title(NONE) not in other_page.locator("main").inner_text()

    # Signed out, the same addresses lead to the sign-in page, not to A's data. The sign-out's
    # answer (which drops the cookie) is awaited: going on before it arrives would cancel it.
    navigate_by(page, page.get_by_role("button", name="ログアウト"))
    response = page.goto(received_url)
    assert reference not in page.locator("main").inner_text()
    assert "/sign-in" in page.url or (response is not None and response.status in (401, 403, 404))
