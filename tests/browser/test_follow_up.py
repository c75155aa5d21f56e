"""The one simple follow-up of a question page: with JavaScript the script shows it only when the
answer it depends on asks for it; without JavaScript it is always there with a note saying when
to answer it. (sodai-gomi-shushu: "another place" asks for that place's address.)"""

from __future__ import annotations

import re

from playwright.sync_api import expect

import flows
from test_apply import CONDITIONS, resident


def to_the_place_page(page, tmp_path) -> None:
    """Answers the first page and stops on the page asking where the items will be put out."""
    flows.open_start_page(page, CONDITIONS)
    flows.start_application(page, CONDITIONS, resident())
    data = flows.valid_example(CONDITIONS)
    first = {key: data[key] for key in data if page.locator(f'[name^="{key}"]').count()}
    fields = flows.fields_by_id(re.match(r"https?://[^/]+", page.url).group(0), CONDITIONS)
    for key, value in first.items():
        flows._fill(page, fields[key], key, value, tmp_path)
    page.get_by_role("button", name="次へ").click()
    expect(page.locator('[name="discharge_place"]').first).to_be_attached()


def test_the_script_reveals_the_follow_up_only_when_asked_for(page, tmp_path):
    to_the_place_page(page, tmp_path)
    follow_up = page.locator("[data-show-if]")
    expect(follow_up).to_have_count(1)
    expect(follow_up).to_be_hidden()
    page.get_by_label("別の場所（市内に限る）").check()
    expect(follow_up).to_be_visible()
    expect(follow_up.locator('[name="discharge_address.address"]')).to_be_visible()
    page.get_by_label("申込者の住所と同じ").check()
    expect(follow_up).to_be_hidden()


def test_without_javascript_the_follow_up_is_shown_with_when_it_applies(page_without_js, tmp_path):
    page = page_without_js
    to_the_place_page(page, tmp_path)
    follow_up = page.locator("[data-show-if]")
    expect(follow_up).to_be_visible()
    expect(follow_up.locator(".conditional")).to_be_visible()
    expect(follow_up.locator('[name="discharge_address.address"]')).to_be_visible()
