"""``jqm web`` as a process, and its API documentation page in a browser that can reach nothing but it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Route, expect, sync_playwright

from tests.integration.mailserver import free_port
from tests.integration.test_cli_project import JQM, _env_without_jqm_app, project
from tests.integration.webserver import CHROMIUM_ARGS, require_chromium


@pytest.fixture(scope="module")
def jqm_web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("web")
    folder = project(tmp / "myproj", f"sqlite:///{tmp / 'store.sqlite'}")
    port = free_port()
    log_path = tmp / "web.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [JQM, "--app", "myproj:app", "web", "--port", str(port)],
            cwd=folder,
            env=_env_without_jqm_app(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/login", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)


def test_the_api_docs_page_loads_its_assets_from_the_server_itself(jqm_web: str) -> None:
    page = httpx.get(f"{jqm_web}/api/docs", timeout=10)

    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert assets
    for asset in assets:
        assert asset.startswith("/"), f"/api/docs loads {asset} from elsewhere"
        assert httpx.get(f"{jqm_web}{asset}", timeout=10).status_code == 200, asset


def test_the_api_docs_render_in_a_browser_with_no_internet(jqm_web: str, tmp_path: Path) -> None:
    executable = require_chromium()
    elsewhere: list[str] = []

    def only_this_server(route: Route) -> None:
        if route.request.url.startswith(jqm_web):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", only_this_server)
            page.goto(f"{jqm_web}/api/docs")
            expect(page.locator(".opblock").first).to_be_visible(timeout=30_000)
            expect(page.locator(".info .title")).to_contain_text("jqm-celery")
        finally:
            browser.close()
    assert elsewhere == []
