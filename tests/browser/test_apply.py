"""Residents applying from the catalog to the reference number in the browser: the issue's five
representative procedures with JavaScript on, two of them with JavaScript off, a double submit,
and axe-core on every page of the way."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

import flows
from conftest import axe_violations, navigate_by

# The five kinds of procedure.
NONE = "shimin-kouza-moshikomi"  # sign-in only, two pages
CARD_AUTH_GROUP_FILE = "houkago-jidou-club-moshikomi"  # card, a repeatable group with a file each
CARD_SIGN = "juminhyo-copy-request"  # the card's signature, and a fee per copy
FEE = "inu-kansatsu-saikofu"  # a fixed fee
CONDITIONS = "sodai-gomi-shushu"  # pages and fields shown by answers; a fee computed from them


def resident() -> str:
    """A new card holder for each test: nobody shares drafts or applications by accident."""
    return f"resident-{uuid.uuid4().hex[:10]}"


@pytest.mark.parametrize("procedure_id", [NONE, CARD_AUTH_GROUP_FILE, CARD_SIGN, FEE, CONDITIONS])
def test_apply_from_the_catalog_to_the_reference_number(page, procedure_id, tmp_path):
    reference = flows.apply(page, procedure_id, resident(), tmp_path)
    assert re.fullmatch(r"[A-Z0-9-]{6,}", reference), reference
    expect(page.get_by_text(flows.title(procedure_id))).to_be_visible()


def test_conditions_show_what_the_answers_ask_for(page, tmp_path):
    """Collection somewhere else than home asks for that address; an item "other" asks for its
    name (inside a repeated group); the fee is computed from the items."""
    data = flows.valid_example(CONDITIONS) | {
        "discharge_place": "other_address",
        "discharge_address": {"postal_code": "922-0331", "address": "石川県加賀市動橋町イ1"},
    }
    assert any(item["item"] == "other" for item in data["items"])
    flows.open_start_page(page, CONDITIONS)
    flows.start_application(page, CONDITIONS, resident())
    flows.answer_questions(page, CONDITIONS, data, tmp_path)
    answers = page.locator("main")
    expect(answers).to_contain_text("石川県加賀市動橋町イ1")
    expect(answers).to_contain_text(data["items"][1]["item_other"])
    expect(answers).to_contain_text("800円")
    reference = flows.send(page)
    assert reference


@pytest.mark.parametrize("procedure_id", [NONE, FEE])
def test_apply_with_javascript_off(page_without_js, procedure_id, tmp_path):
    reference = flows.apply(page_without_js, procedure_id, resident(), tmp_path)
    assert re.fullmatch(r"[A-Z0-9-]{6,}", reference), reference


def test_the_fee_is_on_the_confirm_page_and_the_receipt(page, tmp_path):
    flows.open_start_page(page, FEE)
    flows.start_application(page, FEE, resident())
    flows.answer_questions(page, FEE, flows.valid_example(FEE), tmp_path)
    fee = page.get_by_role("heading", name="手数料").locator("xpath=following-sibling::p[1]")
    expect(fee).to_have_text(re.compile(r"\d[\d,]*円"))
    flows.send(page)
    expect(page.locator(".facts")).to_contain_text("円")


def test_card_sign_shows_what_is_signed_and_sends_the_signature(page, server, tmp_path):
    """The confirm page leads to signing; the signing page shows the exact payload (with this
    attempt's nonce); the configured dev signer signs it; the application keeps the signature."""
    subject = resident()
    flows.open_start_page(page, CARD_SIGN)
    flows.start_application(page, CARD_SIGN, subject)
    flows.answer_questions(page, CARD_SIGN, flows.valid_example(CARD_SIGN), tmp_path)
    expect(page.get_by_role("button", name="申請する")).to_have_count(0)
    page.get_by_role("button", name="署名へ進む").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("署名して申請する")
    payload = page.locator("pre.payload").inner_text()
    assert f'"procedure_id": "{CARD_SIGN}"' in payload, payload
    nonce = page.locator('input[name="signing_nonce"]').get_attribute("value")
    assert nonce and nonce in payload
    count, report = axe_violations(page)
    assert count == 0, report
    page.get_by_role("button", name="署名して申請する").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("申請を受け付けました")
    signed = server.scalar(
        "SELECT count(*) FROM submission_signatures g JOIN submissions s ON s.id = g.submission_id"
        " JOIN residents r ON r.id = s.resident_id WHERE r.subject = :'subject'",
        subject=subject,
    )
    assert signed == "1"


def test_a_double_tap_on_send_makes_one_application(page, server, tmp_path):
    subject = resident()
    flows.open_start_page(page, NONE)
    flows.start_application(page, NONE, subject)
    flows.answer_questions(page, NONE, flows.valid_example(NONE), tmp_path)
    # Two submits of the same form before the first answer arrives (a double tap).
    page.evaluate(
        """() => { const form = document.querySelector('form[action$="/submit"]');
                   form.requestSubmit(); form.requestSubmit(); }"""
    )
    expect(page.get_by_role("heading", level=1)).to_have_text("申請を受け付けました")
    first = page.locator(".reference").inner_text()
    # The back button to the confirm page as the browser kept it, and 「申請する」 again.
    page.go_back()
    send = page.get_by_role("button", name="申請する")
    if send.count():
        send.click()
        expect(page.get_by_role("heading", level=1)).to_have_text("申請を受け付けました")
        assert page.locator(".reference").inner_text() == first
    assert server.applications_of(subject) == 1


def test_every_page_of_an_application_has_no_axe_violations(page, tmp_path):
    """Sign-in, the apply page, each question page (also with errors), confirm and 受付完了."""
    procedure_id = CARD_AUTH_GROUP_FILE
    seen: list[str] = []

    def check(name: str) -> None:
        count, report = axe_violations(page)
        assert count == 0, f"{name} ({page.url}):\n{report}"
        # The same address in English, then back to Japanese (the choice is kept in a cookie).
        here = page.url
        page.goto(here + ("&" if "?" in here else "?") + "lang=en")
        count, report = axe_violations(page)
        assert count == 0, f"{name} in English ({page.url}):\n{report}"
        page.goto(here + ("&" if "?" in here else "?") + "lang=ja")
        page.goto(here)
        seen.append(name)

    flows.open_start_page(page, procedure_id)
    navigate_by(page, page.get_by_role("link", name="申請をはじめる"))
    expect(page).to_have_url(re.compile(r"/sign-in\?next="))
    check("sign-in")
    flows.sign_in_with_dev_card(page, resident())
    expect(page).to_have_url(re.compile(f"/procedures/{procedure_id}/apply$"))
    check("apply")
    page.get_by_role("button", name="新しく申請をはじめる").click()
    page.get_by_role("button", name="次へ").click()
    expect(page.locator(".error-summary")).to_be_visible()
    count, report = axe_violations(page)
    assert count == 0, f"question page with errors:\n{report}"
    check("question page")
    data = flows.valid_example(procedure_id)
    flows.answer_questions(page, procedure_id, data, tmp_path)
    check("confirm")
    flows.send(page)
    check("received")
    page.goto("/drafts")
    check("drafts")
    assert len(seen) == 6


def test_pages_after_applying_have_no_axe_violations(page, tmp_path):
    """申請履歴, an application's page, withdrawal and the account page, in ja and en."""
    flows.apply(page, NONE, resident(), tmp_path)
    application = re.search(r"/submissions/([^/]+)/received$", page.url).group(1)
    for path in (
        "/applications",
        f"/applications/{application}",
        f"/applications/{application}/withdraw",
        "/account",
    ):
        for lang in ("ja", "en"):
            response = page.goto(f"{path}?lang={lang}")
            assert response is not None and response.status == 200, f"{path}: {response.status}"
            count, report = axe_violations(page)
            assert count == 0, f"{path} ({lang}):\n{report}"
    page.goto("/?lang=ja")
