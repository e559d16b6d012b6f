"""Headless Chromium (Debian's `chromium`) driven by Playwright's sync API on one dedicated thread, for trio tests.

Playwright's sync objects belong to the thread that made them, so every browser step runs on the same worker
thread; `await browser.run(fn, *args)` hands a step to it without blocking the trio loop (stations keep talking).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
import trio

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class Browser:
    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")
        self._playwright: Any = None
        self.browser: Any = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        future = self._thread.submit(fn, *args)
        return await trio.to_thread.run_sync(future.result)

    async def __aenter__(self) -> Browser:
        def start() -> None:
            from playwright.sync_api import sync_playwright

            # trio-asyncio's global loop policy would hand Playwright a trio-bound loop: give it a plain one.
            policy = asyncio.get_event_loop_policy()
            asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
            try:
                self._playwright = sync_playwright().start()
            finally:
                asyncio.set_event_loop_policy(policy)
            self.browser = self._playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)

        await self.run(start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        def stop() -> None:
            if self.browser is not None:
                self.browser.close()
            if self._playwright is not None:
                self._playwright.stop()

        await self.run(stop)
        self._thread.shutdown(wait=True)

    async def page(self, *, width: int = 1024, height: int = 900) -> Any:
        """A fresh context (its own cookies) at tablet width by default."""
        return await self.run(lambda: self.browser.new_context(viewport={"width": width, "height": height}).new_page())


def require_browser() -> None:
    if shutil.which(CHROMIUM) is None:
        pytest.skip("Debian's chromium is not installed (deploy/local/bootstrap.sh installs it)")
    pytest.importorskip("playwright.sync_api")
