"""When the database cannot be reached, a page that needs it is the 503 page with a way to retry,
never a 500 or a hang; it passes axe, and the retry works once the database is back."""

from __future__ import annotations

import contextlib

from playwright.sync_api import expect

import flows
from conftest import axe_violations
from madoguchi_server import psql
from test_apply import resident


@contextlib.contextmanager
def database_refusing_connections(server):
    database = server.database_url.rsplit("/", 1)[1]
    psql(f"ALTER DATABASE {database} ALLOW_CONNECTIONS false")
    psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        f" WHERE datname = '{database}' AND pid <> pg_backend_pid()"
    )
    try:
        yield
    finally:
        psql(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true")


def test_the_503_page_offers_a_retry_that_works_later(page, server):
    page.goto("/sign-in?next=/applications")
    flows.sign_in_with_dev_card(page, resident())
    expect(page).to_have_url(server.url("/applications"))
    with database_refusing_connections(server):
        for lang in ("ja", "en"):
            response = page.goto(f"/applications?lang={lang}")
            assert response is not None and response.status == 503, response.status
            assert response.headers.get("retry-after")
            count, report = axe_violations(page)
            assert count == 0, f"503 ({lang}):\n{report}"
    # The database is back: the page's retry link leads to the page itself (the pool may need
    # a moment to reconnect, so a few tries, as a resident would).
    retry = page.locator("main a.button")
    assert retry.get_attribute("href") == "/applications?lang=en"
    for _ in range(10):
        with page.expect_navigation() as navigation:
            retry.click() if retry.count() else page.reload()
        if navigation.value and navigation.value.status == 200:
            break
        page.wait_for_timeout(500)
    assert navigation.value.status == 200
    page.goto("/?lang=ja")
