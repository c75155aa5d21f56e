"""The public pages work with JavaScript off: from home through a category or a search to a
procedure's start page and the way in, and the language switch."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def test_catalog_to_start_page_by_category(page_without_js):
    page = page_without_js
    page.goto("/")
    page.get_by_role("link", name=re.compile(r"^ごみ・リサイクル\s?（\d+）$")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("ごみ・リサイクル")
    page.get_by_role("link", name="粗大ごみ収集の申込").click()
    expect(page).to_have_url(re.compile(r"/procedures/sodai-gomi-shushu$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("粗大ごみ収集の申込")
    start = page.get_by_role("link", name="申請をはじめる")
    start.click()
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/procedures/sodai-gomi-shushu/apply$"))


def test_search_by_kana_and_switch_to_english(page_without_js):
    page = page_without_js
    page.goto("/")
    # Hiragana finds a katakana title.
    page.get_by_label("手続きを探す").fill("ちゃいるどしーと")
    page.get_by_label("手続きを探す").press("Enter")
    expect(page).to_have_url(re.compile(r"/procedures\?q="))
    result = page.get_by_role("link", name="チャイルドシート購入補助金申請")
    expect(result).to_be_visible()
    result.click()
    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"[A-Za-z]"))
    # The choice is remembered: home is now in English too, without `?lang=`.
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_search_error_links_to_the_field(page_without_js):
    page = page_without_js
    page.goto("/procedures")
    page.get_by_label("手続きを探す").fill("あ" * 101)
    page.get_by_label("手続きを探す").press("Enter")
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    summary.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"#q$"))
    expect(page.locator("#q")).to_have_attribute("aria-invalid", "true")
