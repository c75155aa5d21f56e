"""A clerk's whole day in the staff console, in a real browser, with a resident in the portal
beside them: sign in, 「次を担当する」, open, return with comments on two fields (clicking each
field); the resident answers in the portal and resubmits; the clerk sees the diff and completes;
the resident sees 処理完了 and the email arrives through the real SMTP test server. Two clerks
claiming at once in two browser contexts get different applications; a clerk of another
division sees nothing of it; a My Number reveal appears in the resident's "who viewed my data".
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request
import uuid

import yaml
from playwright.sync_api import expect

import flows
from conftest import ACTION_MS, NAVIGATION_MS, navigate_by
from madoguchi_server import ROOT
from test_apply import NONE, resident

DESKTOP = {"width": 1280, "height": 900}
PHONE_COMMENT = "日中につながる電話番号を入力してください"
EMAIL_COMMENT = "メールアドレスを確認してください"
REVEAL_REASON = "住基ネットとの照合のため"
MAIL_SECONDS = 30


def staff_account(server, division: str, role: str = "clerk") -> tuple[str, str]:
    """A staff member made as a city makes one (`madoguchi staff create`): (login, password)."""
    login, password = f"day-{role}-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    subprocess.run(
        [str(server.binary), "staff", "create", "--login", login, "--name", f"職員 {login}",
         "--division", division, "--role", role],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": server.database_url,
             "MADOGUCHI_PROFILE": "development", "MADOGUCHI__LOG__FILTER": "warn",
             "MADOGUCHI_STAFF_PASSWORD": password},
        check=True,
        timeout=60,
        capture_output=True,
    )
    return login, password


def console(browser, server):
    """A desktop browser context of its own (its own cookies)."""
    context = browser.new_context(base_url=server.base_url, viewport=DESKTOP)
    context.set_default_timeout(ACTION_MS)
    context.set_default_navigation_timeout(NAVIGATION_MS)
    return context


def sign_in(page, login: str, password: str) -> None:
    page.goto("/staff/sign-in")
    page.get_by_label("ログインID").fill(login)
    page.get_by_label("パスワード").fill(password)
    page.get_by_role("button", name="ログイン", exact=True).click()
    expect(page).to_have_url(re.compile(r"/staff$"))


def claim_until(page, queue: str, application: str) -> None:
    """「次を担当する」 until this application opens (other tests' applications may be older in
    the same queue; each claimed one stays with this clerk)."""
    for _ in range(60):
        page.goto(f"/staff/queues/{queue}")
        page.get_by_role("button", name="次を担当する").click()
        expect(page).to_have_url(re.compile(r"/staff/applications/[0-9a-f-]+$"))
        if page.url.endswith(application):
            return
    raise AssertionError(f"{application} never came out of the queue {queue}")


def start_if_asked(page) -> None:
    # Whether the button is there is read from the whole page, not from one still loading.
    page.wait_for_load_state()
    start = page.get_by_role("button", name="処理を開始する")
    if start.count():
        navigate_by(page, start)
    expect(page.get_by_role("button", name="処理完了にする")).to_be_visible()


def mail_to(server, address: str, needle: str) -> dict:
    """The first message to `address` whose text has `needle`, waiting for the outbox worker."""
    deadline = time.monotonic() + MAIL_SECONDS
    while time.monotonic() < deadline:
        for message in server.mailbox.messages():
            if address in message["to"] and needle in message["text"]:
                return message
        time.sleep(0.5)
    raise AssertionError(f"no mail to {address} with {needle!r} in {MAIL_SECONDS}s")


def confirm_email(page, server, subject: str) -> str:
    """The resident signs in, gives an address on the account page and confirms it from the
    email."""
    address = f"resident-{uuid.uuid4().hex[:8]}@example.jp"
    page.goto("/sign-in?next=/account")
    flows.sign_in_with_dev_card(page, subject)
    expect(page).to_have_url(re.compile(r"/account$"))
    page.locator("#email").fill(address)
    page.get_by_role("button", name="保存する").click()
    message = mail_to(server, address, "/account/email/confirm")
    link = re.search(r"/account/email/confirm\?token=[^\s\"<>]+", message["text"]).group(0)
    page.goto(link)
    page.get_by_role("button", name="確認する").click()
    expect(page.locator("#email-confirmed")).to_be_visible()
    return address


def comment_on(page, path: str, comment: str) -> None:
    """Clicks the field's 「この項目へのコメント」 and types the comment."""
    row = page.locator("tr", has=page.locator(f'textarea[name="comment:{path}"]'))
    row.locator("summary", has_text="この項目へのコメント").click()
    row.locator(f'textarea[name="comment:{path}"]').fill(comment)


def other_division(division: str) -> str:
    for path in sorted(ROOT.glob("forms/*/*.yaml")):
        definition = yaml.safe_load(path.read_text())
        if isinstance(definition, dict) and definition.get("division", division) != division:
            return definition["division"]
    raise AssertionError("no second division")


def test_a_clerks_day_from_claim_to_completion(browser, server, page, tmp_path):
    # The resident confirms an address for notices and applies in the portal.
    subject = resident()
    address = confirm_email(page, server, subject)
    reference = flows.apply(page, NONE, subject, tmp_path)
    application = re.search(r"/submissions/([^/]+)/received$", page.url).group(1)
    division = flows.definition(server.base_url, NONE)["division"]

    clerk_context = console(browser, server)
    outsider_context = console(browser, server)
    try:
        clerk = clerk_context.new_page()
        sign_in(clerk, *staff_account(server, division))
        claim_until(clerk, division, application)
        expect(clerk.get_by_role("heading", level=1)).to_contain_text(reference)
        start_if_asked(clerk)
        comment_on(clerk, "/applicant_phone", PHONE_COMMENT)
        comment_on(clerk, "/email", EMAIL_COMMENT)
        clerk.locator("#return-reason").fill("連絡先の確認をお願いします")
        clerk.get_by_role("button", name="差し戻す", exact=True).click()
        expect(clerk.locator("#status")).to_have_attribute("data-status", "returned")

        # The resident answers the two comments in the portal and resubmits.
        page.goto(f"/applications/{application}")
        expect(page.get_by_role("heading", name="差し戻されています")).to_be_visible()
        expect(page.locator(".returned")).to_contain_text(PHONE_COMMENT)
        page.get_by_role("link", name="訂正する").click()
        expect(page.locator(".clerk-comment")).to_have_count(2)
        new_email = f"kaga-{uuid.uuid4().hex[:6]}@example.jp"
        page.locator('[name="applicant_phone"]').fill("090-8765-4321")
        page.locator('[name="email"]').fill(new_email)
        page.get_by_role("button", name="訂正して再送信する").click()
        expect(page).to_have_url(re.compile(f"/applications/{application}$"))

        # The clerk sees what changed, highlighted, and completes.
        clerk.goto(f"/staff/applications/{application}")
        clerk.get_by_role("link", name="前の版との違い").click()
        expect(clerk).to_have_url(re.compile(r"/revisions/2$"))
        changed = clerk.locator("tr.changed")
        expect(changed.locator("mark", has_text=new_email)).to_have_count(1)
        paths = sorted(changed.evaluate_all("rows => rows.map(r => r.dataset.path)"))
        assert paths == ["/applicant_phone", "/email"], paths
        navigate_by(clerk, clerk.get_by_role("link", name="申請に戻る"))
        start_if_asked(clerk)
        clerk.get_by_role("button", name="処理完了にする").click()
        expect(clerk.locator("#status")).to_have_attribute("data-status", "completed")

        # The resident sees 処理完了, and the notice comes by email.
        page.goto(f"/applications/{application}")
        expect(page.locator("main")).to_contain_text("処理完了")
        message = mail_to(server, address, "処理が完了しました")
        assert reference in message["text"]
        assert new_email not in message["text"], "no answers in the email"

        # A clerk of another division finds nothing of it anywhere.
        outsider = outsider_context.new_page()
        sign_in(outsider, *staff_account(server, other_division(division)))
        assert reference not in outsider.locator("main").inner_text()
        for path in (
            f"/staff/applications/{application}",
            f"/staff/applications/{application}/revisions/2",
            f"/staff/queues/{division}",
            f"/staff/queues/{division}?status=completed",
        ):
            response = outsider.goto(path)
            assert response is not None and response.status == 404, f"{path}: {response.status}"
            expect(outsider.get_by_role("heading", level=1)).to_have_text("ページが見つかりません")
            assert reference not in outsider.locator("main").inner_text(), path
        outsider.goto(f"/staff/queues/{other_division(division)}?status=completed")
        assert reference not in outsider.locator("main").inner_text()
    finally:
        clerk_context.close()
        outsider_context.close()


def submit_by_api(server, procedure: str, data: dict) -> str:
    """An application sent through the JSON API by a new `dev` card holder; its id."""
    started = server.api("POST", "/api/v1/auth/dev/start")
    token = server.api(
        "POST",
        "/api/v1/auth/dev/complete",
        {"challenge_id": started["challenge_id"], "subject": resident()},
    )["access_token"]
    request = urllib.request.Request(
        server.url(f"/api/v1/procedures/{procedure}/submissions"),
        method="POST",
        data=json.dumps({"data": data}, default=str).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {token}",
                 "idempotency-key": uuid.uuid4().hex},
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.loads(response.read())["id"]


def test_two_clerks_claiming_at_once_get_different_applications(browser, server):
    division = flows.definition(server.base_url, NONE)["division"]
    for _ in range(2):
        submit_by_api(server, NONE, flows.valid_example(NONE))
    contexts = [console(browser, server) for _ in range(2)]
    try:
        pages = [context.new_page() for context in contexts]
        for clerk in pages:
            sign_in(clerk, *staff_account(server, division))
            clerk.goto(f"/staff/queues/{division}")
        # Both buttons are pressed at the same moment of the browser's clock, neither waiting
        # for the other's answer: the two claims race on the server.
        at = time.time() * 1000 + 1500
        for clerk in pages:
            clerk.evaluate(
                "at => setTimeout(() => document.getElementById('claim-next').click(),"
                " Math.max(0, at - Date.now()))",
                at,
            )
        claimed = []
        for clerk in pages:
            expect(clerk).to_have_url(re.compile(r"/staff/applications/[0-9a-f-]+$"))
            claimed.append(clerk.url.rsplit("/", 1)[1])
        assert claimed[0] != claimed[1], claimed
        assignees = {
            server.scalar("SELECT assignee_id FROM submissions WHERE id = :'id'", id=id)
            for id in claimed
        }
        assert len(assignees) == 2 and "" not in assignees, assignees
    finally:
        for context in contexts:
            context.close()


def my_number_procedure() -> str:
    """A procedure without routing whose valid example holds the test My Number."""
    for path in sorted(ROOT.glob("forms/*/*.yaml")):
        definition = yaml.safe_load(path.read_text())
        if not isinstance(definition, dict) or definition.get("routing"):
            continue
        for example in definition.get("examples", []):
            text = json.dumps(example.get("data"), default=str)
            if (example.get("valid") and not example.get("as_of")
                    and "123456789018" in text and "01900000-" not in text):
                return definition["id"]
    raise AssertionError("no procedure collecting a My Number")


def test_a_reveal_appears_in_the_residents_who_viewed_my_data(browser, server, page, tmp_path):
    procedure = my_number_procedure()
    flows.apply(page, procedure, resident(), tmp_path)
    application = re.search(r"/submissions/([^/]+)/received$", page.url).group(1)
    division = flows.definition(server.base_url, procedure)["division"]

    context = console(browser, server)
    try:
        clerk = context.new_page()
        sign_in(clerk, *staff_account(server, division))
        claim_until(clerk, division, application)
        main = clerk.locator("main")
        expect(main).to_contain_text("********9018")
        assert "123456789018" not in main.inner_text(), "masked until revealed"
        clerk.locator("summary", has_text="マイナンバーを表示").first.click()
        expect(clerk.get_by_text("申請者が「閲覧記録」で確認できます").first).to_be_visible()
        clerk.get_by_label("表示する理由").first.fill(REVEAL_REASON)
        clerk.get_by_role("button", name="マイナンバーを表示").first.click()
        expect(clerk.locator("main")).to_contain_text("123456789018")
    finally:
        context.close()

    page.goto(f"/applications/{application}")
    log = page.locator("#access-log")
    entry = log.locator(".access-entry", has_text="マイナンバーの表示")
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text(REVEAL_REASON)
