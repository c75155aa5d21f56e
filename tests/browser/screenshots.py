"""The README's screenshots of the portal at a phone's width, taken from the real server.

    .cache/browser/bin/python tests/browser/screenshots.py target/debug/madoguchi

(the browser tests' virtual environment: README.md, "The resident portal").

Writes docs/images/portal-home.png and docs/images/portal-start-page.png. Japanese glyphs need a
CJK font on the machine (Debian: fonts-noto-cjk).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from madoguchi_server import ROOT, madoguchi
from playwright.sync_api import sync_playwright

SHOTS = {
    "portal-home.png": "/",
    "portal-start-page.png": "/procedures/juminhyo-copy-request",
}


def main() -> int:
    binary = sys.argv[1] if len(sys.argv) > 1 else sys.exit(__doc__)
    out = ROOT / "docs/images"
    out.mkdir(parents=True, exist_ok=True)
    with madoguchi(binary) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=["--no-sandbox"]
        )
        context = browser.new_context(
            base_url=server.base_url,
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
        )
        page = context.new_page()
        for name, path in SHOTS.items():
            page.goto(path)
            page.screenshot(path=out / name, full_page=False)
            print(Path(out / name).relative_to(ROOT))
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
