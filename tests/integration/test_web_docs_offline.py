"""``jqm web`` as a process, and its API documentation page in a browser that can reach nothing but it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Route, expect, sync_playwright

from tests.integration.mailserver import free_port
from tests.integration.test_cli_project import JQM, _env_without_jqm_app, project
from tests.integration.webserver import CHROMIUM_ARGS, require_chromium
from tests.processes import Process, wait_until


@pytest.fixture(scope="module")
def jqm_web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("web")
    folder = project(tmp / "myproj", f"sqlite:///{tmp / 'store.sqlite'}")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with Process(
        [JQM, "--app", "myproj:app", "web", "--port", str(port)],
        tmp / "web.log",
        cwd=folder,
        env=_env_without_jqm_app(),
    ) as web:
        wait_until(lambda: _answers(f"{base}/login"), 60, "jqm web did not answer", web)
        yield base


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.TransportError:
        return False
    return True


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
