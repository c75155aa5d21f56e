"""A clerk returns an application with comments on two fields (through the staff JSON API); the
resident sees who opened it and why it came back, answers just those fields, and resubmits."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

import flows
from conftest import axe_violations
from test_apply import CARD_SIGN, NONE, resident

PHONE_COMMENT = "日中につながる電話番号を入力してください"
EMAIL_COMMENT = "メールアドレスを確認してください"


def claim(server, token: str, queue: str, application: str) -> None:
    """Claims from the queue until this application is the clerk's (other tests' applications
    may be ahead of it in the same queue)."""
    for _ in range(50):
        claimed = server.api("POST", f"/api/v1/staff/queues/{queue}/claim", {}, token)
        assert claimed is not None, f"{application} never came out of the queue {queue}"
        if claimed["id"] == application:
            return
    raise AssertionError(f"{application} not claimed")


def test_a_return_with_field_comments_is_answered_and_resubmitted(page, server, tmp_path):
    reference = flows.apply(page, NONE, resident(), tmp_path)
    application = re.search(r"/submissions/([^/]+)/received$", page.url).group(1)
    division = flows.definition(server.base_url, NONE)["division"]

    clerk = server.staff_token(division)
    claim(server, clerk, division, application)
    server.api("GET", f"/api/v1/staff/submissions/{application}", token=clerk)
    server.api(
        "POST",
        f"/api/v1/staff/submissions/{application}/transitions",
        {
            "action": "return",
            "reason": "連絡先の確認をお願いします",
            "field_comments": [
                {"path": "/applicant_phone", "comment": PHONE_COMMENT},
                {"path": "/email", "comment": EMAIL_COMMENT},
            ],
        },
        clerk,
    )

    # The resident finds it in the history, returned, with who opened it.
    page.goto("/applications")
    row = page.locator(".application-item", has_text=reference)
    expect(row).to_contain_text("差し戻し")
    row.get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(f"/applications/{application}$"))
    expect(page.get_by_role("heading", name="差し戻されています")).to_be_visible()
    expect(page.locator(".returned")).to_contain_text(PHONE_COMMENT)
    expect(page.locator("#access-log")).to_contain_text("申請内容の閲覧")
    count, report = axe_violations(page)
    assert count == 0, report

    # The correction page has only the two fields, each under its comment.
    page.get_by_role("link", name="訂正する").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("申請内容の訂正")
    expect(page.locator(".clerk-comment")).to_have_count(2)
    assert page.locator('[name="course"]').count() == 0, "only the commented fields"
    count, report = axe_violations(page)
    assert count == 0, report

    # A bad answer comes back with the error summary linking to the field.
    page.locator('[name="email"]').fill("not an address")
    page.get_by_role("button", name="訂正して再送信する").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    count, report = axe_violations(page)
    assert count == 0, report
    summary.get_by_role("link").first.click()
    expect(page.locator('[name="email"]')).to_be_focused()

    new_email = f"kaga-{uuid.uuid4().hex[:6]}@example.jp"
    page.locator('[name="applicant_phone"]').fill("090-8765-4321")
    page.locator('[name="email"]').fill(new_email)
    page.get_by_role("button", name="訂正して再送信する").click()
    expect(page).to_have_url(re.compile(f"/applications/{application}$"))
    expect(page.get_by_role("heading", name="差し戻されています")).to_have_count(0)
    expect(page.locator("main")).to_contain_text(new_email)

    # The clerk sees the corrected answers in a new revision.
    seen = server.api("GET", f"/api/v1/staff/submissions/{application}", token=clerk)
    assert seen["status"] != "returned", seen["status"]
    assert seen["data"]["email"] == new_email
    assert seen["data"]["applicant_phone"].replace("-", "") == "09087654321"


def test_a_returned_card_sign_application_is_signed_again(page, server, tmp_path):
    """A card-sign procedure's return: the corrected answer is shown as part of what will be
    signed, the dev signer signs it, and the new revision carries its own signature."""
    subject = resident()
    flows.apply(page, CARD_SIGN, subject, tmp_path)
    application = re.search(r"/submissions/([^/]+)/received$", page.url).group(1)
    division = flows.definition(server.base_url, CARD_SIGN)["division"]
    clerk = server.staff_token(division)
    claim(server, clerk, division, application)
    server.api(
        "POST",
        f"/api/v1/staff/submissions/{application}/transitions",
        {
            "action": "return",
            "reason": "連絡先の確認をお願いします",
            "field_comments": [{"path": "/applicant_phone", "comment": PHONE_COMMENT}],
        },
        clerk,
    )

    page.goto(f"/applications/{application}/correct")
    expect(page.get_by_role("heading", level=1)).to_have_text("申請内容の訂正")
    page.locator('[name="applicant_phone"]').fill("090-1111-2222")
    page.get_by_role("button", name="署名へ進む").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("署名して申請する")
    payload = page.locator("pre.payload").inner_text()
    assert f'"procedure_id": "{CARD_SIGN}"' in payload, payload
    assert "090-1111-2222" in payload or "09011112222" in payload, payload
    count, report = axe_violations(page)
    assert count == 0, report
    page.get_by_role("button", name="署名して申請する").click()
    expect(page).to_have_url(re.compile(f"/applications/{application}$"))
    expect(page.get_by_role("heading", name="差し戻されています")).to_have_count(0)

    seen = server.api("GET", f"/api/v1/staff/submissions/{application}", token=clerk)
    assert seen["status"] != "returned", seen["status"]
    assert seen["data"]["applicant_phone"].replace("-", "") == "09011112222"
    revisions = server.scalar(
        "SELECT string_agg(revision::text, ',' ORDER BY revision) FROM submission_signatures"
        " WHERE submission_id = :'id'",
        id=application,
    )
    assert revisions == "1,2", revisions
