"""The staff console in a real browser: axe-core finds no WCAG 2.2 A/AA violation on any console
page type, in Japanese and English, at desktop and tablet widths; the pages are driven by their
labels, as a keyboard or screen-reader user would find them."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
import uuid

import pytest
import yaml

from conftest import ACTION_MS, NAVIGATION_MS, axe_violations, navigate_by
from madoguchi_server import ROOT

SIZES = {"desktop": {"width": 1280, "height": 900}, "tablet": {"width": 768, "height": 1024}}


def sample() -> tuple[str, str, dict]:
    """A procedure anyone signed in may apply for, without routing rules or files, and valid
    answers from its examples."""
    for path in sorted(ROOT.glob("forms/*/*.yaml")):
        definition = yaml.safe_load(path.read_text())
        if not isinstance(definition, dict) or definition.get("routing"):
            continue
        if definition.get("assurance", "none") != "none":
            continue
        for example in definition.get("examples", []):
            text = json.dumps(example.get("data"), default=str)
            if example.get("valid") and not example.get("as_of") and "01900000-" not in text:
                return definition["id"], definition["division"], example["data"]
    raise AssertionError("no sample procedure")


@pytest.fixture(scope="module")
def console(server):
    """An application in a division's queue and an admin of that division (with a password)."""
    procedure, division, data = sample()
    started = server.api("POST", "/api/v1/auth/dev/start")
    token = server.api(
        "POST",
        "/api/v1/auth/dev/complete",
        {"challenge_id": started["challenge_id"], "subject": "console-axe"},
    )["access_token"]
    submit = urllib.request.Request(
        server.url(f"/api/v1/procedures/{procedure}/submissions"),
        method="POST",
        data=json.dumps({"data": data}, default=str).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {token}",
                 "idempotency-key": "console-axe"},
    )
    with urllib.request.urlopen(submit, timeout=15) as response:
        created = json.loads(response.read())
    login, password = f"console-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    subprocess.run(
        [str(server.binary), "staff", "create", "--login", login, "--name", "職員 管理者",
         "--division", division, "--role", "admin"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": server.database_url,
             "MADOGUCHI_PROFILE": "development", "MADOGUCHI__LOG__FILTER": "warn",
             "MADOGUCHI_STAFF_PASSWORD": password},
        check=True,
        timeout=60,
        capture_output=True,
    )
    return {"id": created["id"], "queue": division, "login": login, "password": password}


def check(page, name: str) -> None:
    count, report = axe_violations(page)
    assert count == 0, f"{name}:\n{report}"
    assert page.locator("h1").count() == 1, name


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_console_page_type_has_no_axe_violations(browser, server, console, lang, size):
    context = browser.new_context(base_url=server.base_url, viewport=SIZES[size])
    context.set_default_timeout(ACTION_MS)
    context.set_default_navigation_timeout(NAVIGATION_MS)
    page = context.new_page()
    sign_in = "ログイン" if lang == "ja" else "Sign in"
    try:
        page.goto(f"/staff/sign-in?lang={lang}")
        check(page, "sign-in")
        page.get_by_label("ログインID" if lang == "ja" else "Login").fill(console["login"])
        page.get_by_label("パスワード" if lang == "ja" else "Password").fill("not the password")
        navigate_by(page, page.get_by_role("button", name=sign_in, exact=True))
        check(page, "sign-in refused")
        page.get_by_label("パスワード" if lang == "ja" else "Password").fill(console["password"])
        navigate_by(page, page.get_by_role("button", name=sign_in, exact=True))
        page.wait_for_url("**/staff")
        check(page, "dashboard")
        application = f"/staff/applications/{console['id']}"
        for name, path in [
            ("queue list", f"/staff/queues/{console['queue']}"),
            ("queue list, bad filter", f"/staff/queues/{console['queue']}?from=2026-13-99"),
            ("application", application),
            ("diff", f"{application}/revisions/1"),
            ("failed emails", "/staff/admin/emails"),
            ("accounts", "/staff/admin/accounts"),
            ("password change", "/staff/password"),
            ("404", "/staff/applications/00000000-0000-0000-0000-000000000000"),
        ]:
            page.goto(path)
            check(page, name)
        page.goto(f"/staff/queues/{console['queue']}?overdue=true")
        page.locator("#name").fill(f"saved {lang} {size}")
        navigate_by(page, page.locator("form.save-filter button"))
        check(page, "queue list with saved filters")
        page.locator("#name").fill("")
        navigate_by(page, page.locator("form.save-filter button"))
        check(page, "saved filter refused")
        page.goto("/staff/admin/accounts")
        page.locator("#new-login").fill(console["login"])
        navigate_by(page, page.locator("form.console-form button[type=submit]"))
        check(page, "new account refused")
        page.goto("/staff/admin/accounts")
        navigate_by(page, page.get_by_role("link", name=console["login"]))
        check(page, "account")
        page.goto(application)
        start = page.get_by_role("button", name="処理を開始する" if lang == "ja" else "Start processing")
        if start.count():
            navigate_by(page, start)
        check(page, "application in progress")
        navigate_by(
            page,
            page.get_by_role("button", name="差し戻す" if lang == "ja" else "Return for correction"),
        )
        check(page, "return refused")
    finally:
        context.close()
