"""Paying a fee in the browser, against the fake SB Payment Service (a separate process, see
madoguchi_server.py): a procedure paid at submission sent from the catalog, 「支払う」, the form
that hands over to the provider, the provider's own page, the page the resident comes back to and
the payment confirmation, with axe-core on each of our pages in Japanese and English. A declined
payment can be paid again; a fee set by a clerk after review is paid the same way.

Everything happens in one tab, each navigation awaited by what the next page shows.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

from playwright.sync_api import Page, expect

import flows
from conftest import axe_violations
from test_apply import CARD_SIGN, resident
from test_return import claim

# 住民票の写し: paid at submission (300 yen a copy and the return postage), card-signed.
AT_SUBMIT = CARD_SIGN
# 除籍謄抄本: the clerk sets the fee after review (事後決済).
AFTER_REVIEW = "joseki-shomei-request"


def no_violations(page: Page, name: str) -> None:
    count, report = axe_violations(page)
    assert count == 0, f"{name} ({page.url}):\n{report}"


def in_both_languages(page: Page, name: str) -> None:
    """axe on this page as shown, then at the same address in English and back in Japanese
    (the choice is kept in a cookie, so later pages are Japanese again)."""
    assert page.locator("html").get_attribute("lang") == "ja"
    no_violations(page, name)
    here = urlparse(page.url)
    kept = [pair for pair in here.query.split("&") if pair and not pair.startswith("lang=")]
    address = here.path + "?" + "".join(pair + "&" for pair in kept)
    for lang in ("en", "ja"):
        response = page.goto(address + f"lang={lang}")
        assert response is not None and response.status == 200, f"{name}: {response.status}"
        assert page.locator("html").get_attribute("lang") == lang
        if lang == "en":
            no_violations(page, f"{name} in English")


def checkout(page: Page, button: str, heading: str) -> dict[str, str]:
    """On the pay page: the pay button, then the page with the form to the provider; returns
    that form's fields."""
    page.get_by_role("button", name=button, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    form = page.locator("form#checkout")
    names = form.locator('input[type="hidden"]').evaluate_all(
        "inputs => inputs.map(input => [input.name, input.value])"
    )
    return dict(names)


def same_order(these: dict[str, str], those: dict[str, str]) -> bool:
    return all(these[name] == those[name] for name in ("order_id", "amount", "success_url"))


def to_the_providers_page(page: Page, provider_url: str, fields: dict[str, str]) -> None:
    """From the checkout page through the plain form to the provider's own page."""
    page.get_by_role("button", name="お支払いページへ").click()
    expect(page).to_have_url(f"{provider_url}/purchase")
    expect(page.get_by_role("heading", level=1)).to_have_text("お支払い")
    expect(page.locator("#amount")).to_have_text(fields["amount"])
    expect(page.locator("#order")).to_have_text(fields["order_id"])


def send_at_submit_application(page: Page, subject: str, tmp_path) -> str:
    """From the catalog to 受付完了 of a procedure paid at submission; returns its id."""
    flows.apply(page, AT_SUBMIT, subject, tmp_path)
    expect(page.locator("#pay-link")).to_be_visible()
    return re.search(r"/submissions/([^/]+)/received$", page.url).group(1)


def test_a_fee_paid_at_submission_on_every_payment_page_without_axe_violations(
    paying_page, paying_server, tmp_path
):
    page = paying_page
    provider = paying_server.payments
    subject = resident()
    application = send_at_submit_application(page, subject, tmp_path)
    in_both_languages(page, "受付完了 with the pay link")

    page.goto(f"/applications/{application}")
    expect(page.locator("#pay-link")).to_be_visible()
    in_both_languages(page, "the application waiting for payment")

    page.locator("#pay-link").click()
    expect(page).to_have_url(re.compile(f"/applications/{application}/pay$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("支払う")
    total = page.locator("#total").inner_text()
    assert re.fullmatch(r"[\d,]+円", total), total
    in_both_languages(page, "the pay page")

    # The checkout page answers a post, so each language is its own post of the pay form: the
    # same attempt's key, so the same payment (the same order; the request is dated anew).
    fields = checkout(page, "支払う", "お支払いページへ進む")
    assert fields["amount"] == total.removesuffix("円").replace(",", "")
    no_violations(page, "the checkout page")
    page.goto(f"/applications/{application}/pay?lang=en")
    assert same_order(checkout(page, "Pay", "Go to the payment page"), fields)
    no_violations(page, "the checkout page in English")
    page.goto(f"/applications/{application}/pay?lang=ja")
    assert same_order(checkout(page, "支払う", "お支払いページへ進む"), fields)
    payments = paying_server.scalar(
        "SELECT count(*) FROM payments WHERE submission_id = :'id'", id=application
    )
    assert payments == "1"

    # Back from the provider before its result arrived (the provider's return address, opened
    # early): the page waits for the provider, whatever the address claims.
    order, amount, return_url = fields["order_id"], fields["amount"], fields["success_url"]
    return_path = urlparse(return_url).path
    assert re.fullmatch(r"/payments/[^/]+/return", return_path), return_path
    page.goto(f"{return_path}?res_result=OK")
    expect(page.get_by_role("heading", level=1)).to_have_text("お支払いを確認しています")
    in_both_languages(page, "the return page, checking")

    page.goto(f"/applications/{application}/pay")
    fields = checkout(page, "支払う", "お支払いページへ進む")
    assert same_order(fields, {"order_id": order, "amount": amount, "success_url": return_url})
    to_the_providers_page(page, provider.base_url, fields)
    page.get_by_role("button", name="支払う").click()
    # The provider has sent its notification before it sends the resident back.
    expect(page).to_have_url(paying_server.url(return_path))
    expect(page.get_by_role("heading", level=1)).to_have_text("お支払いが完了しました")
    in_both_languages(page, "the return page, paid")

    page.get_by_role("link", name="申請の一覧へ").click()
    expect(page).to_have_url(re.compile(r"/applications$"))
    page.goto(f"/applications/{application}")
    expect(page.locator("#payment-state")).to_have_text("支払済み")
    expect(page.locator("#pay-link")).to_have_count(0)
    in_both_languages(page, "the application paid")

    page.locator("#payment-confirmation-link").click()
    expect(page).to_have_url(re.compile(r"/payments/[^/]+/confirmation$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("お支払い確認")
    expect(page.locator("#paid-amount")).to_have_text(total)
    expect(page.locator("#provider-reference")).not_to_be_empty()
    in_both_languages(page, "the payment confirmation")

    # Paid: the pay page, still at its address, has nothing left to pay.
    page.goto(f"/applications/{application}/pay")
    expect(page.get_by_text("いまお支払いいただくものはありません")).to_be_visible()
    expect(page.get_by_role("button", name="支払う")).to_have_count(0)
    in_both_languages(page, "the pay page with nothing to pay")

    assert provider.control("order", {"order_id": fields["order_id"]})["status"] == "succeeded"
    state = paying_server.scalar(
        "SELECT p.status || ' ' || s.status FROM payments p"
        " JOIN submissions s ON s.id = p.submission_id WHERE s.id = :'id'",
        id=application,
    )
    assert state == "succeeded submitted", state


def test_a_declined_payment_says_so_and_can_be_paid_again(paying_page, paying_server, tmp_path):
    page = paying_page
    provider = paying_server.payments
    application = send_at_submit_application(page, resident(), tmp_path)
    page.locator("#pay-link").click()
    fields = checkout(page, "支払う", "お支払いページへ進む")
    to_the_providers_page(page, provider.base_url, fields)

    # The card is declined on the provider's page (the fake is told so), and the resident
    # goes back without paying.
    declined = provider.control("pay", {"order_id": fields["order_id"], "result": "NG"})
    assert declined["delivered"] == [[200, "OK,"]], declined
    page.get_by_role("button", name="支払わずに戻る").click()
    expect(page).to_have_url(re.compile(r"/payments/[^/]+/return$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("お支払いは完了していません")
    in_both_languages(page, "the return page, not paid")

    # A new attempt: a new key, so a second payment with its own order.
    page.goto(f"/applications/{application}")
    page.locator("#pay-link").click()
    again = checkout(page, "支払う", "お支払いページへ進む")
    assert again["order_id"] != fields["order_id"]
    to_the_providers_page(page, provider.base_url, again)
    page.get_by_role("button", name="支払う").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("お支払いが完了しました")
    statuses = paying_server.scalar(
        "SELECT string_agg(status, ',' ORDER BY created_at) FROM payments"
        " WHERE submission_id = :'id'",
        id=application,
    )
    assert statuses == "failed,succeeded", statuses


def test_paying_needs_no_javascript(paying_page_without_js, paying_server, tmp_path):
    """The hand-off and the way back are plain forms and links."""
    page = paying_page_without_js
    application = send_at_submit_application(page, resident(), tmp_path)
    page.locator("#pay-link").click()
    fields = checkout(page, "支払う", "お支払いページへ進む")
    to_the_providers_page(page, paying_server.payments.base_url, fields)
    page.get_by_role("button", name="支払う").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("お支払いが完了しました")
    page.goto(f"/applications/{application}")
    page.locator("#payment-confirmation-link").click()
    expect(page.locator("#paid-amount")).to_have_text(f"{int(fields['amount']):,}円")


def test_a_fee_set_after_review_is_paid_from_the_application_page(
    paying_page, paying_server, tmp_path
):
    """事後決済: sent without paying; the clerk sets the fee; the resident sees the request on the
    application's page, pays, and the application goes back to the clerk."""
    page = paying_page
    provider = paying_server.payments
    flows.apply(page, AFTER_REVIEW, resident(), tmp_path)
    expect(page.locator("#pay-link")).to_have_count(0)
    application = re.search(r"/submissions/([^/]+)/received$", page.url).group(1)

    division = flows.definition(paying_server.base_url, AFTER_REVIEW)["division"]
    clerk = paying_server.staff_token(division)
    claim(paying_server, clerk, division, application)
    paying_server.api(
        "POST",
        f"/api/v1/staff/submissions/{application}/fee",
        {
            "lines": [
                {"kind": "fee", "id": "fee", "yen": 1500},
                {"kind": "postage", "id": "standard_letter", "yen": 110},
            ],
            "reason": "除籍謄本2通",
        },
        clerk,
    )

    page.goto(f"/applications/{application}")
    expect(page.locator("#pay-link")).to_be_visible()
    in_both_languages(page, "the application with a payment request")
    page.locator("#pay-link").click()
    expect(page.locator("#total")).to_have_text("1,610円")
    in_both_languages(page, "the pay page of a fee set after review")
    fields = checkout(page, "支払う", "お支払いページへ進む")
    assert fields["amount"] == "1610"
    to_the_providers_page(page, provider.base_url, fields)
    page.get_by_role("button", name="支払う").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("お支払いが完了しました")
    status = paying_server.scalar("SELECT status FROM submissions WHERE id = :'id'", id=application)
    assert status == "in_progress", status
