"""The portal's page weight and load time on an emulated 3G phone, and the server's render time
of a question page as a ratio to the JSON definition endpoint. Run by hand (docs/BENCHMARKS.md):

    benches/pages/run.sh PATH_TO_MADOGUCHI_BINARY

Starts the real `madoguchi serve` on a throwaway database (tests/browser/madoguchi_server.py),
loads every page type in Debian's Chromium through the DevTools protocol's throttling (1.44 Mbps
down, 675 kbps up, 562 ms round trip, CPU slowed 4 times, as Lighthouse's mobile preset), and
compares the figures with the budgets of UI.md. The server takes fees online through the fake
payment provider (`payments=True`, tests/fixtures/sbps/server.py), so the payment pages are
measured on an application really sent and really paid in the browser. Then `wrk` requests a
question page (signed in, a draft of the procedure), the JSON definition endpoint and the JSON
Schema of the same procedure in alternating rounds, to compare their cost on the server. Only
127.0.0.1 is contacted; every step is bounded in time.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/browser"))

import flows  # noqa: E402
from madoguchi_server import madoguchi  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402

# UI.md's budgets.
FIRST_PAGE_BUDGET = 30 * 1024
LATER_PAGE_BUDGET = 15 * 1024
JS_BUDGET = 10 * 1024
LOAD_BUDGET_MS = 2000

THROTTLING = {
    "offline": False,
    "latency": 562,
    "downloadThroughput": 1_440_000 / 8,
    "uploadThroughput": 675_000 / 8,
}
CPU_SLOWDOWN = 4

PAGES = {
    "home": "/",
    "catalog (all 173)": "/procedures",
    "category": "/procedures?category=gomi",
    "search": "/procedures?q=住民票",
    "start page": "/procedures/juminhyo-copy-request",
    "sign-in": "/sign-in?next=/procedures/juminhyo-copy-request",
    "accessibility": "/accessibility",
    "404": "/no-such-page",
}

# The procedure whose question page and JSON definition are compared on the server.
RATIO_PROCEDURE = "juminhyo-copy-request"
# Pages of a signed-in resident, in a draft of RATIO_PROCEDURE ({draft} is filled in).
SIGNED_IN_PAGES = {
    "question page": "/drafts/{draft}/pages/1",
    "confirm": "/drafts/{draft}/confirm",
    "drafts": "/drafts",
}


def signed_in_draft(browser, base_url: str) -> tuple[dict, str]:
    """Signs a `dev` card holder in through the pages and starts a draft of RATIO_PROCEDURE;
    returns the browser session (cookies) and the draft's id."""
    context = browser.new_context(base_url=base_url)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(f"/procedures/{RATIO_PROCEDURE}/apply")
    page.locator("#subject").fill("benchmark-resident")
    page.locator("form.dev-sign-in button[type=submit]").click()
    page.locator(f'form[action="/procedures/{RATIO_PROCEDURE}/apply"] button').click()
    page.wait_for_url(re.compile(r"/drafts/[^/]+/pages/\d+$"))
    draft = page.url.split("/drafts/")[1].split("/")[0]
    session = context.storage_state()
    context.close()
    return session, draft


# A procedure paid at submission (300 yen a copy and the return postage), card-signed.
PAID_PROCEDURE = "juminhyo-copy-request"
# The payment pages, of an application of PAID_PROCEDURE sent by a signed-in resident:
# {application} and {payment} are filled in. The checkout hand-off answers the pay page's form
# post, so it is measured as that post (see `load`'s `submit`).
PAY_BUTTON = "支払う"
CHECKOUT = "checkout hand-off"
PAYMENT_PAGES_BEFORE = {
    "pay": "/applications/{application}/pay",
    CHECKOUT: "/applications/{application}/pay",
    "return (checking)": "/payments/{payment}/return",
}
PAYMENT_PAGES_AFTER = {
    "return (paid)": "/payments/{payment}/return",
    "payment confirmation": "/payments/{payment}/confirmation",
}


def sent_application(browser, base_url: str) -> tuple[dict, str]:
    """A `dev` card holder applies for PAID_PROCEDURE through the pages, from the home page to
    受付完了 (tests/browser/flows.py); returns the session and the application's id."""
    context = browser.new_context(base_url=base_url)
    context.set_default_timeout(30_000)
    page = context.new_page()
    with tempfile.TemporaryDirectory(prefix="madoguchi-bench-") as attachments:
        flows.apply(page, PAID_PROCEDURE, "benchmark-payer", Path(attachments))
    page.locator("#pay-link").wait_for()
    application = re.search(r"/submissions/([^/]+)/received$", page.url).group(1)
    session = context.storage_state()
    context.close()
    return session, application


def checkout_return_path(browser, base_url: str, session: dict, application: str,
                         pay: bool) -> str:
    """The pay page's form post, to the checkout page; returns the path the provider sends the
    resident back to. `pay`: then through the provider's own page, paying (the provider
    notifies the server before it sends the resident back)."""
    context = browser.new_context(base_url=base_url, storage_state=session)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(f"/applications/{application}/pay")
    page.get_by_role("button", name=PAY_BUTTON, exact=True).click()
    form = page.locator("form#checkout")
    success_url = form.locator('input[name="success_url"]').get_attribute("value")
    path = urllib.parse.urlsplit(success_url).path
    if pay:
        form.locator("button[type=submit]").click()
        page.get_by_role("button", name=PAY_BUTTON).click()
        page.wait_for_url(base_url + path)
        expect(page.locator("#outcome")).to_have_text("お支払いが完了しました")
    else:
        page.goto(path)
        expect(page.locator("#outcome")).to_have_text("お支払いを確認しています")
    context.close()
    return path


ROUNDS = 3


def load(
    browser, base_url: str, path: str, warm_with: str | None, session=None, submit=None
) -> dict:
    """Loads `path` in a fresh phone context (with a signed-in `session`'s cookies when given),
    after `warm_with` when given (a later page: the stylesheets are cached then). Returns the
    bytes it fetched and its load time. `submit`: the page measured is the one the button so
    named on `path` posts to; `path` is loaded unthrottled first, and without `warm_with` the
    cache is switched off for the post, so that page is measured as a first page."""
    context = browser.new_context(
        base_url=base_url, viewport={"width": 390, "height": 844}, storage_state=session
    )
    context.set_default_timeout(60_000)
    page = context.new_page()
    if warm_with:
        page.goto(warm_with, wait_until="load")
    if submit:
        page.goto(path, wait_until="load")
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    if submit and not warm_with:
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    cdp.send("Network.emulateNetworkConditions", THROTTLING)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": CPU_SLOWDOWN})
    # What crossed the (emulated) network, by request id; cached answers are left out.
    responses: dict[str, dict] = {}

    def received(event):
        response = event["response"]
        if response.get("fromDiskCache") or response.get("fromServiceWorker"):
            return
        headers = {name.lower(): value for name, value in response["headers"].items()}
        responses[event["requestId"]] = {
            "url": response["url"],
            "type": event["type"],
            "encoding": headers.get("content-encoding", ""),
        }

    cached: set[str] = set()

    def from_cache(event):
        cached.add(event["requestId"])

    def finished(event):
        if event["requestId"] in responses:
            responses[event["requestId"]]["wire"] = event["encodedDataLength"]

    cdp.on("Network.responseReceived", received)
    cdp.on("Network.loadingFinished", finished)
    cdp.on("Network.requestServedFromCache", from_cache)
    started = time.monotonic()
    if submit:
        with page.expect_navigation(wait_until="load") as navigation:
            page.get_by_role("button", name=submit, exact=True).click()
        response = navigation.value
    else:
        response = page.goto(path, wait_until="load")
    wall_ms = (time.monotonic() - started) * 1000
    timing = page.evaluate(
        "() => { const n = performance.getEntriesByType('navigation')[0];"
        " return {load: n.loadEventEnd, dcl: n.domContentLoadedEventEnd}; }"
    )
    for request_id in cached:
        responses.pop(request_id, None)
    fetched = [item for item in responses.values() if "wire" in item]
    # A copy: the protocol's events keep arriving while bodies are fetched (a favicon, say).
    for request_id, item in list(responses.items()):
        if item not in fetched:
            continue
        body = cdp.send("Network.getResponseBody", {"requestId": request_id})
        raw = base64.b64decode(body["body"]) if body["base64Encoded"] else body["body"].encode()
        # What crossed the wire besides the body (status line, headers), then the body as gzip
        # would send it: the server's own if it compressed, else gzip level 6 of it.
        sent_body = item["wire"] if item["encoding"] else len(raw)
        item["overhead"] = max(item["wire"] - sent_body, 0) if not item["encoding"] else 0
        item["body_gzip"] = item["wire"] if item["encoding"] else len(gzip.compress(raw, 6))
    context.close()

    def weight(items, key):
        if key == "wire":
            return sum(item["wire"] for item in items)
        return sum(item["overhead"] + item[key] for item in items)

    scripts = [item for item in fetched if item["type"] == "Script"]
    return {
        "status": response.status if response else None,
        "requests": len(fetched),
        "bytes": weight(fetched, "wire"),
        "bytes_gzip": weight(fetched, "body_gzip"),
        "js_gzip": weight(scripts, "body_gzip"),
        "load_ms": round(timing["load"]),
        "wall_ms": round(wall_ms),
        "server_gzips": any(item["encoding"] == "gzip" for item in fetched),
    }


def wrk(url: str, seconds: int, headers: dict[str, str]) -> dict:
    """Requests per second of `url` with 2 threads and 8 connections, and the mean time per
    request that follows in a closed loop (8 in flight / rate, Little's law)."""
    command = ["wrk", "-t2", "-c8", f"-d{seconds}s", "--timeout", "5s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(
        command + [url], capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {"per_second": rate, "mean_ms": 8 / rate * 1000, "non_2xx": int(errors.group(1)) if errors else 0}


def median(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda run: run["per_second"])[len(runs) // 2]


def kb(size: int) -> str:
    return f"{size / 1024:.1f} KB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary")
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_DURATION", "10")))
    parser.add_argument("--out", help="also write the figures there as JSON")
    args = parser.parse_args()
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    figures: dict = {"pages": {}, "render": {}}
    # The shipped pool and worker count, not the small ones the browser tests use.
    shipped = {"MADOGUCHI__DATABASE__POOL_SIZE": "16", "MADOGUCHI__SERVER__WORKERS": "0"}
    # The application's steps wait for what each page shows; a busy machine is slow.
    expect.set_options(timeout=30_000)
    with madoguchi(args.binary, shipped, payments=True) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])

        def measure(name: str, path: str, cookies=None, submit=None) -> None:
            first = load(browser, server.base_url, path, None, cookies, submit)
            warm = "/" if path != "/" else "/accessibility"
            later = load(browser, server.base_url, path, warm, cookies, submit)
            expected = 404 if name == "404" else 200
            if first["status"] != expected or later["status"] != expected:
                raise SystemExit(
                    f"{name} ({path}) answered {first['status']} and {later['status']}, "
                    f"not {expected}"
                )
            met = (
                first["bytes_gzip"] <= FIRST_PAGE_BUDGET
                and later["bytes_gzip"] <= LATER_PAGE_BUDGET
                and max(first["js_gzip"], later["js_gzip"]) <= JS_BUDGET
                and max(first["load_ms"], later["load_ms"]) <= LOAD_BUDGET_MS
            )
            figures["pages"][name] = {"path": path, "first": first, "later": later, "met": met}
            print(
                f"{name:<22} {kb(first['bytes_gzip']):>10} {kb(first['bytes']):>9} "
                f"{first['load_ms']:>6}ms   {kb(later['bytes_gzip']):>10} {later['load_ms']:>6}ms   "
                f"{kb(first['js_gzip']):>7}  {'met' if met else 'NOT MET'}",
                flush=True,
            )

        # One load first so the server's templates are compiled before anything is timed.
        load(browser, server.base_url, "/", None)
        print(
            f"{'page':<22} {'first: gz':>10} {'raw':>9} {'load':>8}   "
            f"{'later: gz':>10} {'load':>8}   {'JS gz':>7}  verdict"
        )
        session, draft = signed_in_draft(browser, server.base_url)
        every_page = {name: (path, None) for name, path in PAGES.items()} | {
            name: (path.format(draft=draft), session) for name, path in SIGNED_IN_PAGES.items()
        }
        for name, (path, cookies) in every_page.items():
            measure(name, path, cookies)
        # The payment pages: before paying (the return page then waits for the provider),
        # then paid through the provider's page.
        payer, application = sent_application(browser, server.base_url)
        ids = {"application": application}
        pending = checkout_return_path(browser, server.base_url, payer, application, pay=False)
        ids["payment"] = pending.split("/")[2]
        for name, path in PAYMENT_PAGES_BEFORE.items():
            submit = PAY_BUTTON if name == CHECKOUT else None
            measure(name, path.format(**ids), payer, submit)
        paid = checkout_return_path(browser, server.base_url, payer, application, pay=True)
        ids["payment"] = paid.split("/")[2]
        for name, path in PAYMENT_PAGES_AFTER.items():
            measure(name, path.format(**ids), payer)
        browser.close()
        gzips = any(page["first"]["server_gzips"] for page in figures["pages"].values())
        print(
            f"budgets: first page <= {kb(FIRST_PAGE_BUDGET)}, later <= {kb(LATER_PAGE_BUDGET)}, "
            f"JS <= {kb(JS_BUDGET)}, load <= {LOAD_BUDGET_MS} ms; "
            + ("the server sent gzip" if gzips else "gz = each body gzipped at level 6 by the "
               "benchmark (the server sent it uncompressed; load times are for what it sent)")
        )

        page_url = server.url(SIGNED_IN_PAGES["question page"].format(draft=draft))
        definition_url = server.url(f"/api/v1/procedures/{RATIO_PROCEDURE}")
        schema_url = server.url(f"/api/v1/procedures/{RATIO_PROCEDURE}/schema")
        cookie = {
            "Cookie": "; ".join(f"{c['name']}={c['value']}" for c in session["cookies"])
        }
        # wrk counts a redirect as success: make sure the cookie opens the page itself.
        parsed = urllib.parse.urlsplit(page_url)
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
        connection.request("GET", parsed.path, headers=cookie)
        status = connection.getresponse().status
        connection.close()
        if status != 200:
            raise SystemExit(f"the question page answered {status} to the benchmark's session")
        wrk(page_url, 2, cookie)  # warm-up
        wrk(definition_url, 2, {})
        wrk(schema_url, 2, {})
        # Alternating rounds, so a slow moment of the machine falls on all; the medians count.
        rounds = {"page": [], "definition": [], "schema": []}
        for _ in range(ROUNDS):
            rounds["page"].append(wrk(page_url, args.seconds, cookie))
            rounds["definition"].append(wrk(definition_url, args.seconds, {}))
            rounds["schema"].append(wrk(schema_url, args.seconds, {}))
        html = median(rounds["page"])
        definition = median(rounds["definition"])
        schema = median(rounds["schema"])
        ratio = html["mean_ms"] / definition["mean_ms"]
        figures["render"] = {
            "rounds": rounds,
            "ratio": ratio,
            "ratio_to_schema": html["mean_ms"] / schema["mean_ms"],
            "seconds": args.seconds,
        }
        print(
            f"\nserver, {ROUNDS} alternating rounds of {args.seconds}s, 8 connections (medians): "
            f"question page {html['per_second']:.0f} req/s ({html['mean_ms']:.2f} ms), "
            f"JSON definition {definition['per_second']:.0f} req/s ({definition['mean_ms']:.2f} ms), "
            f"JSON schema {schema['per_second']:.0f} req/s ({schema['mean_ms']:.2f} ms); "
            f"page / definition time = {ratio:.2f}, page / schema time = "
            f"{figures['render']['ratio_to_schema']:.2f}"
        )
        errors = sum(run["non_2xx"] for runs in rounds.values() for run in runs)
        if errors:
            print(f"non-2xx answers: {errors}")
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
