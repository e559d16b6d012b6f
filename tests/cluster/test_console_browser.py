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

from csms.devtools.station import SimulatedStation

pytestmark = pytest.mark.cluster
READ_TOKEN = "cluster-test-read-token"
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
                page.wait_for_function("document.getElementById('live-status').textContent.startsWith('live')")

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
                page.wait_for_function("document.getElementById('live-status').textContent.startsWith('live')")
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
