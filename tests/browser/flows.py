"""A resident applying in the browser, as a person would: from the home page through the search,
the start page, the `dev` card sign-in, every question page and the confirm page to the
reference number. The answers are a procedure's first valid example from its definition under
forms/ (the same examples the Rust suite checks), typed into the real inputs page by page;
attachments are small real files of an accepted type.
"""

from __future__ import annotations

import copy
import datetime
import json
import re
import urllib.request
from functools import cache
from pathlib import Path

import yaml
from playwright.sync_api import Page, expect

from conftest import navigate_by
from madoguchi_server import ROOT

# A one-page PDF, the smallest that PDF readers open; its magic bytes are what the server checks.
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
# A 1x1 white PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8ffffff7f0009fb03fd2a86e38a"
    "0000000049454e44ae426082"
)


@cache
def _source(procedure_id: str) -> dict:
    for path in (ROOT / "forms").glob(f"*/{procedure_id}.yaml"):
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    raise LookupError(procedure_id)


@cache
def definition(base_url: str, procedure_id: str) -> dict:
    """The definition as the server serves it (shared blocks included), from the JSON API."""
    url = f"{base_url}/api/v1/procedures/{procedure_id}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)["definition"]


def valid_example(procedure_id: str, number: int = 0) -> dict:
    """A valid example of the definition file (the API does not serve examples). An example
    written for a day (`as_of`) has its dates moved by whole weeks to the same distance from
    today, so "at least a week ahead" and the weekday still hold."""
    example = [e for e in _source(procedure_id)["examples"] if e.get("valid")][number]
    data = copy.deepcopy(example["data"])
    if "as_of" not in example:
        return data
    as_of = datetime.date.fromisoformat(str(example["as_of"]))
    weeks = -(-(datetime.date.today() - as_of).days // 7)
    shift = datetime.timedelta(weeks=max(weeks, 0))

    def moved(value):
        if isinstance(value, dict):
            return {key: moved(inner) for key, inner in value.items()}
        if isinstance(value, list):
            return [moved(inner) for inner in value]
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return (datetime.date.fromisoformat(value) + shift).isoformat()
        return value

    return moved(data)


def title(procedure_id: str, lang: str = "ja") -> str:
    return _source(procedure_id)["title"][lang]


def fields_by_id(base_url: str, procedure_id: str) -> dict[str, dict]:
    """Every top-level field of the definition, by id."""
    return {
        field["id"]: field
        for page in definition(base_url, procedure_id)["pages"]
        for field in page["fields"]
    }


def sign_in_with_dev_card(page: Page, subject: str) -> None:
    """On the sign-in page: the fake card's holder id stands for a card."""
    expect(page.get_by_role("heading", level=1)).to_have_text("ログイン")
    page.get_by_label("カード保持者ID").fill(subject)
    navigate_by(page, page.get_by_role("button", name="ログイン", exact=True))


def open_start_page(page: Page, procedure_id: str) -> None:
    """Home → search by the title → the procedure's start page."""
    page.goto("/")
    page.get_by_label("手続きを探す").fill(title(procedure_id))
    page.get_by_role("button", name="検索").click()
    page.get_by_role("link", name=title(procedure_id), exact=True).click()
    expect(page).to_have_url(re.compile(f"/procedures/{procedure_id}$"))


def start_application(page: Page, procedure_id: str, subject: str) -> None:
    """From the start page to the first question page, signing in when asked; returns with
    that page loaded (callers count its inputs)."""
    navigate_by(page, page.get_by_role("link", name="申請をはじめる"))
    if "/sign-in" in page.url:
        sign_in_with_dev_card(page, subject)
    expect(page).to_have_url(re.compile(f"/procedures/{procedure_id}/apply$"))
    navigate_by(page, page.get_by_role("button", name="新しく申請をはじめる"))
    expect(page).to_have_url(re.compile(r"/drafts/[^/]+/pages/\d+$"))


def _upload(page: Page, name: str, tmp: Path) -> None:
    file_input = page.locator(f'input[type="file"][name="{name}"]')
    accept = file_input.get_attribute("accept") or ""
    pdf = not accept or "pdf" in accept
    path = tmp / ("document.pdf" if pdf else "photo.png")
    path.write_bytes(PDF if pdf else PNG)
    file_input.set_input_files(path)


def _fill(page: Page, field: dict, name: str, value, tmp: Path) -> None:
    """Types one answer into the inputs of `field`, named `name` on the page."""
    kind = field.get("type", "text")
    inputs = page.locator(f'[name="{name}"], [name^="{name}."]')
    if kind == "info" or inputs.count() == 0:
        return  # static text, or a fact the card vouched for (drawn as text, not an input)
    if kind == "group":
        for index, member in enumerate(value):
            inner_fields = {f["id"]: f for f in field.get("fields", [])}
            for inner_id, inner_value in member.items():
                if inner_id in inner_fields:
                    _fill(page, inner_fields[inner_id], f"{name}[{index}].{inner_id}", inner_value, tmp)
    elif kind == "date":
        year, month, day = str(value).split("-")
        page.locator(f'[name="{name}.year"]').fill(year)
        page.locator(f'[name="{name}.month"]').fill(str(int(month)))
        page.locator(f'[name="{name}.day"]').fill(str(int(day)))
    elif kind in ("address", "bank_account"):
        for part, part_value in value.items():
            target = page.locator(f'[name="{name}.{part}"]')
            if target.first.get_attribute("type") == "radio":
                page.locator(f'[name="{name}.{part}"][value="{part_value}"]').check()
            else:
                target.fill(str(part_value))
    elif kind == "file":
        for _ in value:
            _upload(page, name, tmp)
            break  # one file per input; a second would need another page visit
    elif kind in ("radio", "boolean"):
        chosen = str(value).lower() if isinstance(value, bool) else str(value)
        page.locator(f'[name="{name}"][value="{chosen}"]').check()
    elif kind == "multi_select":
        for item in value:
            page.locator(f'[name="{name}"][value="{item}"]').check()
    elif kind == "consent":
        if value:
            page.locator(f'[name="{name}"]').check()
    elif kind == "select":
        page.locator(f'[name="{name}"]').select_option(str(value))
    else:
        page.locator(f'[name="{name}"]').fill(str(value))


def _members_to_add(page: Page, fields: dict[str, dict], data: dict) -> str | None:
    """The name of a group on this page that shows fewer members than the answers have."""
    for field_id, field in fields.items():
        if field.get("type") != "group" or field_id not in data:
            continue
        count = page.locator(f'input[type="hidden"][name="{field_id}.count"]')
        if count.count() and int(count.get_attribute("value") or 0) < len(data[field_id]):
            return field_id
    return None


def answer_questions(page: Page, procedure_id: str, data: dict, tmp: Path) -> None:
    """Every question page until the confirm page: the answers typed in, then 「次へ」. A group
    gets its members with 「追加する」 first (a plain form post, with or without JavaScript)."""
    base_url = re.match(r"https?://[^/]+", page.url).group(0)
    fields = fields_by_id(base_url, procedure_id)
    for _ in range(len(definition(base_url, procedure_id)["pages"]) + 10):
        if page.url.endswith("/confirm"):
            return
        expect(page).to_have_url(re.compile(r"/drafts/[^/]+/pages/\d+$"))
        # Each answer page is read (inputs counted, not waited for) only once it has loaded.
        group = _members_to_add(page, fields, data)
        if group:
            navigate_by(page, page.locator(f'button[name="action"][value="add:{group}"]'))
            continue
        for field_id, value in data.items():
            if field_id in fields:
                _fill(page, fields[field_id], field_id, value, tmp)
        navigate_by(page, page.get_by_role("button", name="次へ"))
        summary = page.locator(".error-summary")
        if summary.count():
            raise AssertionError(f"{page.url} refused the answers: {summary.inner_text()}")
    raise AssertionError(f"{procedure_id}: never reached the confirm page")


def send(page: Page) -> str:
    """On the confirm page: 「申請する」 (or, for a card-sign procedure, 「署名へ進む」 and
    「署名して申請する」), then the reference number of 受付完了."""
    expect(page.get_by_role("heading", level=1)).to_have_text("申請内容の確認")
    to_signing = page.get_by_role("button", name="署名へ進む")
    if to_signing.count():
        to_signing.click()
        page.get_by_role("button", name="署名して申請する").click()
    else:
        page.get_by_role("button", name="申請する").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("申請を受け付けました")
    return page.locator(".reference").inner_text().strip()


def apply(page: Page, procedure_id: str, subject: str, tmp: Path) -> str:
    """The whole path, from the home page to the reference number."""
    open_start_page(page, procedure_id)
    start_application(page, procedure_id, subject)
    answer_questions(page, procedure_id, valid_example(procedure_id), tmp)
    return send(page)
