"""The operator console in a real browser against a real 3-replica cluster.

The station is connected to replica-1; the browser talks to replica-2, so every live update crossed replicas
through Postgres NOTIFY. Set CSMS_CONSOLE_SCREENSHOTS=<dir> to save screenshots of the main pages.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from browser import Browser, require_browser
from replica_cluster import TOKEN, ReplicaCluster, open_cluster

from devcluster.station import SimulatedStation

pytestmark = pytest.mark.cluster
READ_TOKEN = "cluster-test-read-token"
# A function, not a bare expression: Playwright polls a bare expression with eval(), which the console's CSP
# (no 'unsafe-eval') refuses once the first check (run from outside the page, so exempt) came back false.
LIVE = "() => document.getElementById('live-status').textContent.startsWith('live')"
STATION = "BRW-1"


def sign_in(page: Any, base: str, token: str) -> None:
    page.goto(f"{base}/ui/login")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/ui/")


def shoot(page: Any, name: str) -> None:
    target = os.environ.get("CSMS_CONSOLE_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


# The quality bar's checks in the page: nothing scrolls the page sideways, every control has a label and a target of
# at least 24 x 24 px (WCAG 2.5.8), and a table that scrolls sideways takes keyboard focus.
QUALITY_PROBLEMS = """() => {
  const problems = [];
  const wide = document.documentElement.scrollWidth;
  if (wide > window.innerWidth) problems.push(`the page is ${wide} px wide`);
  for (const el of document.querySelectorAll("main input:not([type=hidden]), main select, main textarea, button")) {
    if (!el.labels.length && !el.getAttribute("aria-label") && el.tagName !== "BUTTON") {
      problems.push(`no label: ${el.outerHTML.slice(0, 80)}`);
    }
    const box = el.getBoundingClientRect();
    if (el.offsetParent && (box.width < 24 || box.height < 24)) {
      problems.push(`target ${Math.round(box.width)}x${Math.round(box.height)}: ${el.outerHTML.slice(0, 60)}`);
    }
  }
  for (const t of document.querySelectorAll("table")) {
    const focusable = t.querySelector("a[href], button, input, select") || t.getAttribute("tabindex") === "0";
    if (t.scrollWidth > t.clientWidth + 1 && !focusable) problems.push(`no focus, scrolls: ${t.innerText.slice(0, 9)}`);
  }
  return problems;
}"""

# The focused element's outline against the white page: at least 3:1 (WCAG 1.4.11).
FOCUS_CONTRAST = r"""() => {
  const rgb = getComputedStyle(document.activeElement).outlineColor.match(/\d+/g).slice(0, 3).map(Number);
  const lum = rgb.map((c) => c / 255).map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 1.05 / (0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2] + 0.05);
}"""


def tablet_problems(page: Any, base: str, pages: list[str]) -> list[str]:
    """At a tablet's width (768 px), each page's quality problems; and keyboard-only use starts at the skip link,
    which moves focus to the content."""
    problems = []
    for path in pages:
        page.goto(base + path)
        problems += [f"{path}: {p}" for p in page.evaluate(QUALITY_PROBLEMS)]
    page.goto(base + "/ui/stations")
    page.keyboard.press("Tab")
    if page.evaluate("document.activeElement.className") != "skip":
        problems.append("the first Tab does not reach the skip link")
    page.keyboard.press("Enter")
    if page.evaluate("document.activeElement.id") != "main":
        problems.append("the skip link does not move focus to the content")
    page.keyboard.press("Tab")  # the search field
    if (contrast := page.evaluate(FOCUS_CONTRAST)) < 3:
        problems.append(f"focus ring contrast {contrast:.1f}:1 on white")
    return problems


def text_of(page: Any, selector: str) -> str:
    element = page.query_selector(selector)
    return str(element.inner_text()) if element else ""


async def charge(cluster: ReplicaCluster, station: SimulatedStation) -> int:
    await station.boot(chargePointVendor="SimCo", chargePointModel="Sim-7", firmwareVersion="1.4.2")
    await station.status(1, "Preparing")
    started = await station.start_transaction(1, "TAG-BRW", 1000)
    await station.status(1, "Charging")
    return int(started["transactionId"])


async def test_console_in_a_browser(database_url: str, etcd_url: str, prefix: str, tmp_path: Path) -> None:
    require_browser()
    env = {"CSMS_API_TOKENS": f"{TOKEN},{READ_TOKEN}:read"}
    async with (
        open_cluster(database_url, etcd_url, prefix, tmp_path, env=env) as cluster,
        Browser() as browser,
    ):
        owner, console = cluster.nodes[0], cluster.nodes[1]
        base = console.api_url
        async with cluster.api() as api:
            assert (await api.put("/api/v1/id-tags/TAG-BRW", json={"status": "Accepted"})).status_code in (200, 201)
        async with SimulatedStation.connect(owner.ocpp_url, STATION) as station:
            await cluster.wait_owned(STATION, by=[owner.node_id])
            transaction_id = await charge(cluster, station)

            # Sign in and find the station with the list's search.
            page = await browser.page()
            await browser.run(sign_in, page, base, TOKEN)
            await browser.run(shoot, page, "overview")

            def find_station() -> None:
                page.goto(f"{base}/ui/stations")
                page.get_by_label("Station id starts with").fill("BRW")
                page.get_by_role("button", name="Apply").click()
                page.wait_for_selector(f'a[href="/ui/stations/{STATION}"]')
                shoot(page, "stations")
                page.click(f'a[href="/ui/stations/{STATION}"]')
                page.wait_for_selector("#h-session")
                page.wait_for_function(LIVE)

            await browser.run(find_station)
            assert "replica-1" in await browser.run(text_of, page, "#owner-node")

            # Watch the session update live while the station charges: each reading shows up within 2 s.
            lags = []
            for wh in (1500, 2300, 3400):
                await station.meter_values(1, transaction_id, wh)
                acked = time.monotonic()
                await browser.run(
                    lambda wh=wh: page.wait_for_function(
                        "wh => (document.querySelector('[data-latest=energy]') || {}).textContent === wh + ' Wh'",
                        arg=wh,
                        timeout=5000,
                    )
                )
                lags.append(time.monotonic() - acked)
            assert max(lags) < 2.0, lags
            await browser.run(shoot, page, "station")

            # Send a command from the panel: an invalid form is caught by the page, then the station's answer.
            def reset() -> str:
                page.click("text=Reset")
                form = page.locator('form[data-command="Reset"][data-station]')
                form.get_by_role("button", name="Send Reset").click()
                assert form.locator("output").inner_text() == ""  # "type" is required: the browser refused
                form.get_by_label("type").select_option("Soft")
                form.get_by_role("button", name="Send Reset").click()
                page.wait_for_function(
                    "() => document.querySelector('form[data-command=Reset][data-station] output')"
                    ".textContent.includes('completed')",
                    timeout=10000,
                )
                return str(form.locator("output").inner_text())

            answer = await browser.run(reset)
            assert "200 completed" in answer and '"Accepted"' in answer, answer
            assert ("Reset", {"type": "Soft"}) in station.received_calls

            # The session list and its detail chart.
            def sessions() -> None:
                page.goto(f"{base}/ui/sessions?station_id={STATION}")
                page.wait_for_selector(f'a[href="/ui/sessions/{transaction_id}"]')
                shoot(page, "sessions")
                page.goto(f"{base}/ui/sessions/{transaction_id}")
                page.wait_for_selector("figure.chart svg path.line")
                page.goto(f"{base}/ui/id-tags")
                shoot(page, "id-tags")

            await browser.run(sessions)

            tablet = await browser.page(width=768, height=1024)
            await browser.run(sign_in, tablet, base, TOKEN)
            pages = ["/ui/", "/ui/stations", f"/ui/stations/{STATION}", "/ui/sessions", "/ui/id-tags", "/ui/cluster"]
            pages += [f"/ui/sessions/{transaction_id}", "/ui/audit"]
            assert await browser.run(tablet_problems, tablet, base, pages) == []

            # A read user sees no command buttons, and the server refuses a hand-made command anyway.
            reader = await browser.page()

            def read_user() -> int:
                sign_in(reader, base, READ_TOKEN)
                reader.goto(f"{base}/ui/stations/{STATION}")
                assert reader.query_selector("form[data-command]") is None
                assert reader.query_selector("#read-only-note") is not None
                return int(
                    reader.evaluate(
                        """async (id) => (await fetch(`/ui/stations/${id}/commands/Reset`, {method: 'POST',
                            headers: {'Content-Type': 'application/json', 'X-CSRF-Token':
                            document.querySelector('meta[name=csrf-token]').content},
                            body: JSON.stringify({type: 'Soft'})})).status""",
                        STATION,
                    )
                )

            assert await browser.run(read_user) == 403
            assert sum(1 for action, _ in station.received_calls if action == "Reset") == 1

            # The cluster page shows a replica disappearing when it is killed (no reload).
            def open_cluster_page() -> int:
                page.goto(f"{base}/ui/cluster")
                page.wait_for_function(LIVE)
                shoot(page, "cluster")
                return int(page.locator("tr[data-replica]").count())

            assert await browser.run(open_cluster_page) == 3
            victim = cluster.nodes[2]
            await cluster.kill(victim)
            killed = time.monotonic()
            await browser.run(
                lambda: page.wait_for_selector(f'tr[data-replica="{victim.node_id}"]', state="detached", timeout=15000)
            )
            gone_after = time.monotonic() - killed
            assert await browser.run(lambda: page.locator("tr[data-replica]").count()) == 2
            print(
                f"live lags {[round(x, 2) for x in lags]} s; killed replica gone from the page after {gone_after:.1f} s"
            )

            await browser.run(lambda: page.goto(f"{base}/ui/audit"))
            await browser.run(shoot, page, "audit")
