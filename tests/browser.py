"""Debian's Chromium driven by Playwright, headless, the way the machine's notes say it runs here: nothing
downloads a browser (TEEM_CHROMIUM names another binary), and background networking is off."""

from __future__ import annotations

import base64
import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = os.environ.get("TEEM_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("TEEM_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))


@contextlib.contextmanager
def chromium_page(width: int = 1600, height: int = 1000) -> Iterator[Page]:
    if not os.path.exists(CHROMIUM):
        raise FileNotFoundError(f"{CHROMIUM}: Debian's chromium package (./dev.sh test installs it as root)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(60_000)
            # Dagster's community invitation, which a new profile gets once and may show at any moment: closed
            # by Playwright before any action or assertion it would cover
            page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())
            yield page
        finally:
            browser.close()


def screenshot(page: Page, name: str) -> Path:
    """A PNG a person can open, under test-artifacts/browser/ (or TEEM_TEST_ARTIFACTS)."""
    path = ARTIFACTS / "browser" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    _settle(page)
    page.screenshot(path=str(path))
    return path


def lineage_picture(page: Page, name: str, width: int = 1100) -> Path:
    """The lineage graph as Dagster exports it (its SVG download, every node however far off screen), drawn
    `width` pixels wide into test-artifacts/browser/<name>.png: README's docs/lineage.png is one."""
    folder = ARTIFACTS / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    with page.expect_download() as download:
        page.locator("button:has([aria-label=download_for_offline])").click()
    svg = folder / f"{name}.svg"
    download.value.save_as(str(svg))
    found = re.search(r'width="([\d.]+)" height="([\d.]+)"', svg.read_text()[:500])
    assert found, f"{svg}: not an SVG with a size"
    height = round(float(found[2]) * width / float(found[1]))
    browser = page.context.browser
    assert browser is not None
    picture = browser.new_page(viewport={"width": width, "height": height})
    try:
        source = f"data:image/svg+xml;base64,{base64.b64encode(svg.read_bytes()).decode()}"
        picture.set_content(f'<body style="margin:0"><img style="width:{width}px" src="{source}"></body>')
        picture.wait_for_load_state("load")
        path = folder / f"{name}.png"
        picture.screenshot(path=str(path))
    finally:
        picture.close()
    return path


def _settle(page: Page) -> None:
    """An auto-waiting assertion: Playwright runs the page's locator handlers first (the invitation's Skip)."""
    expect(page.locator("body")).to_be_visible()


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    _settle(page)


def launch_from_asset_page(page: Page, base: str, asset: str, partitions: str, button: str) -> None:
    """On an asset's page: Materialize…, every partition shown, `partitions` typed into the selection (a key or
    `[first...last]`), then `button` ("Launch 1 run", "Launch backfill")."""
    open_page(page, f"{base}/assets/{asset}")
    page.get_by_role("button").filter(has_text=re.compile(r"^Materialize")).first.click()
    confirm = page.get_by_role("button", name="Confirm")  # "upstream not materialized": the test knows
    show_all = page.get_by_text("Show all partitions")
    show_all.or_(confirm).first.wait_for()
    if confirm.is_visible():
        confirm.click()
    show_all.click()
    selection = page.get_by_role("dialog").locator("input[type=text]")
    selection.fill(partitions)
    selection.press("Enter")
    page.get_by_role("button", name=button).click()
