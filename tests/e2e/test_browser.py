"""The Swagger UI in a real browser: headless Chromium (Debian's package, driven by
playwright) opens /docs of a real aiges-load serving libecho.so, presses "Try it out"
and "Execute" on the one-shot operation and sees the echo, with the network closed to
everything but the service."""
from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect, sync_playwright

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.access("/usr/bin/chromium", os.X_OK),
                       reason="/usr/bin/chromium is missing: `make browser` installs Debian's "
                              "chromium package"),
]

CHROMIUM = "/usr/bin/chromium"
# No playwright-downloaded browser: the system one, kept off the network on its own.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
TEXT = "hello from the browser"
SCHEMA = f"""
[schema.inputs.input]
type = "text"
encoding = "utf8"
description = "text to echo"
example = "{TEXT}"
[schema.params.lang]
type = "string"
enum = ["en", "zh"]
default = "en"
[schema.outputs.input]
type = "text"
encoding = "utf8"
"""


@pytest.fixture
def echo_docs(start, echo_so, tmp_path):
    path = tmp_path / "aiges.toml"
    path.write_text(SCHEMA)
    return start(echo_so, "-c", str(path))


@pytest.fixture
def page(tmp_path):
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.set_default_timeout(30000)
            yield page
        finally:
            browser.close()


def test_try_it_out_executes_the_once_request(page, echo_docs, tmp_path):
    outside, errors = [], []

    def only_the_service(route):
        if route.request.url.startswith(echo_docs.url + "/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_service)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(echo_docs.url + "/docs")
        operation = page.locator("#operations-once-once")
        operation.locator(".opblock-summary").click()
        operation.get_by_role("button", name="Try it out").click()
        operation.get_by_role("button", name="Execute").click()
        live = operation.locator(".live-responses-table")
        expect(live.locator("tr.response .response-col_status")).to_have_text("200")
        expect(live.locator("tr.response .response-col_description")).to_contain_text(
            f'"text": "{TEXT}"')
        operation.screenshot(path=str(tmp_path / "docs.png"))
    except Exception:
        page.screenshot(path=str(tmp_path / "docs-failure.png"), full_page=True)
        print(f"screenshot: {tmp_path / 'docs-failure.png'}\nservice log:\n{echo_docs.log}")
        raise
    assert outside == [], "the page tried to reach beyond the service"
    assert errors == []
