"""The operator console without a browser: sign-in, CSRF, roles, every page, SSE framing and live changes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import orjson
import pytest
import trio

from devcluster.station import SimulatedStation
from tests.integration.conftest import READ_TOKEN, TOKEN, Running

pytestmark = pytest.mark.integration


def client(csms: Running) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=csms.api_url, timeout=10, follow_redirects=False)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html) or re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


async def sign_in(http: httpx.AsyncClient, token: str) -> str:
    """Sign in like the browser does; returns the session's CSRF token."""
    form = await http.get("/ui/login")
    response = await http.post("/ui/login", data={"token": token, "csrf": csrf_of(form.text)})
    assert response.status_code == 303, response.text
    overview = await http.get("/ui/")
    assert overview.status_code == 200
    return csrf_of(overview.text)


async def test_pages_need_a_session_and_sign_in_takes_a_valid_token_only(csms: Running) -> None:
    async with client(csms) as http:
        response = await http.get("/ui/stations")
        assert response.status_code == 303 and response.headers["location"] == "/ui/login"
        form = await http.get("/ui/login")
        assert 'name="token"' in form.text
        refused = await http.post("/ui/login", data={"token": "not-a-token", "csrf": csrf_of(form.text)})
        assert refused.status_code == 401 and "not valid" in refused.text
        assert "csms_session" not in http.cookies
        await sign_in(http, TOKEN)
        cookie = next(c for c in http.cookies.jar if c.name == "csms_session")
        assert cookie.has_nonstandard_attr("HttpOnly") and cookie.path == "/ui" and cookie.expires
        for path in ("/ui/", "/ui/stations", "/ui/sessions", "/ui/id-tags", "/ui/cluster", "/ui/audit"):
            page = await http.get(path)
            assert page.status_code == 200, (path, page.text[:2000])
            assert "Sign out" in page.text
        csrf = csrf_of((await http.get("/ui/")).text)
        out = await http.post("/ui/logout", data={"csrf": csrf})
        assert out.status_code == 303
        assert (await http.get("/ui/")).status_code == 303


async def test_sign_in_without_the_forms_csrf_token_is_refused(csms: Running) -> None:
    async with client(csms) as http:
        response = await http.post("/ui/login", data={"token": TOKEN})
        assert response.status_code == 403
        assert "csms_session" not in http.cookies


async def test_a_forged_or_tampered_cookie_is_no_session(csms: Running) -> None:
    async with client(csms) as http:
        await sign_in(http, READ_TOKEN)
        value = http.cookies["csms_session"]
        body, signature = value.rsplit(".", 1)
        http.cookies.clear()
        http.cookies.set("csms_session", body + "." + signature[::-1], path="/ui")
        assert (await http.get("/ui/")).status_code == 303


async def test_changes_need_the_csrf_token(csms: Running) -> None:
    async with client(csms) as http:
        csrf = await sign_in(http, TOKEN)
        forged = await http.post("/ui/id-tags", data={"id_tag": "CSRF-1", "status": "Accepted"})
        assert forged.status_code == 403 and "CSRF" in forged.text
        wrong = await http.post("/ui/id-tags", data={"id_tag": "CSRF-1", "status": "Accepted", "csrf": "x" + csrf})
        assert wrong.status_code == 403
        ok = await http.post("/ui/id-tags", data={"id_tag": "CSRF-1", "status": "Accepted", "csrf": csrf})
        assert ok.status_code == 303
        command = await http.post("/ui/stations/NOPE/commands/Reset", json={"type": "Soft"})
        assert command.status_code == 403
        blocked = await http.post("/ui/id-tags/CSRF-1/block", data={"csrf": csrf})
        assert blocked.status_code == 303
    async with csms.api() as api:
        assert (await api.get("/api/v1/id-tags/CSRF-1")).json()["status"] == "Blocked"


async def test_a_read_user_sees_no_command_forms_and_the_server_refuses_them(csms: Running) -> None:
    await csms.put_station("RO-1")
    async with client(csms) as http:
        csrf = await sign_in(http, READ_TOKEN)
        page = await http.get("/ui/stations/RO-1")
        assert page.status_code == 200
        assert "data-command" not in page.text and "can look but not send commands" in page.text
        refused = await http.post(
            "/ui/stations/RO-1/commands/Reset", json={"type": "Soft"}, headers={"X-CSRF-Token": csrf}
        )
        assert refused.status_code == 403
        tag = await http.post("/ui/id-tags", data={"id_tag": "RO", "status": "Accepted", "csrf": csrf})
        assert tag.status_code == 403
    async with csms.api() as api:
        assert (await api.get("/api/v1/commands", params={"station_id": "RO-1"})).json()["items"] == []


async def test_command_from_the_panel_gets_the_same_422_and_the_station_answer(csms: Running) -> None:
    await csms.put_station("CMD-1")
    async with SimulatedStation.connect(csms.ocpp_url, "CMD-1") as station, client(csms) as http:
        await station.boot()
        csrf = await sign_in(http, TOKEN)
        page = await http.get("/ui/stations/CMD-1")
        assert 'data-command="Reset"' in page.text and "OCPP 1.6" in page.text
        headers = {"X-CSRF-Token": csrf, "Accept": "application/json"}
        bad = await http.post("/ui/stations/CMD-1/commands/Reset", json={"type": "Warm"}, headers=headers)
        assert bad.status_code == 422 and "type" in bad.json()["error"]["message"]
        with trio.fail_after(10):
            while not (await http.get("/ui/stations/CMD-1")).text.count("connected"):
                await trio.sleep(0.05)
        good = await http.post("/ui/stations/CMD-1/commands/Reset", json={"type": "Soft"}, headers=headers)
        assert good.status_code == 200, good.text
        assert good.json()["result"] == {"status": "Accepted"}
        assert (good.json()["requested_by"], good.json()["requested_role"]) == ("console:ci-admin", "admin")
        assert "console:ci-admin <small>(admin)</small>" in (await http.get("/ui/audit")).text


@asynccontextmanager
async def live(http: httpx.AsyncClient, **params: str) -> AsyncIterator[trio.MemoryReceiveChannel[tuple[str, dict]]]:
    """Parsed SSE events of /ui/live (event name, JSON data)."""
    send, receive = trio.open_memory_channel[tuple[str, dict]](100)
    async with http.stream("GET", "/ui/live", params=params) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")

        async def read() -> None:
            buffer = ""
            async for text in response.aiter_text():
                buffer += text
                while "\n\n" in buffer:
                    frame, buffer = buffer.split("\n\n", 1)
                    fields = dict(line.split(": ", 1) for line in frame.split("\n") if ": " in line)
                    if "event" in fields:
                        await send.send((fields["event"], orjson.loads(fields["data"])))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            yield receive
            nursery.cancel_scope.cancel()


async def test_sse_framing_and_a_station_change_arrives_live(csms: Running) -> None:
    await csms.put_station("LIVE-1")
    async with client(csms) as http:
        await sign_in(http, READ_TOKEN)
        raw = await http.get("/ui/live", params={"kinds": "bogus"})
        assert raw.status_code == 400
        async with live(http, kinds="status,tx,meter", station="LIVE-1") as events:
            with trio.fail_after(10):
                event, data = await events.receive()
                assert event == "hello" and data["node"] == "test-node"
                async with SimulatedStation.connect(csms.ocpp_url, "LIVE-1") as station:
                    await station.status(1, "Charging")
                    while True:
                        event, data = await events.receive()
                        if event == "change" and "status" in data.get("kinds", []):
                            break
                assert data["keys"] == ["LIVE-1"]


async def test_stations_list_filters_sorts_and_pages(csms: Running) -> None:
    for i in range(7):
        await csms.put_station(f"FLT-{i}")
    async with client(csms) as http:
        await sign_in(http, READ_TOKEN)
        page = await http.get("/ui/stations", params={"q": "FLT-", "size": 5, "sort": "id", "dir": "desc"})
        assert page.status_code == 200
        ids = re.findall(r'href="/ui/stations/(FLT-\d)"', page.text)
        assert ids == ["FLT-6", "FLT-5", "FLT-4", "FLT-3", "FLT-2"] and 'rel="next"' in page.text
        second = await http.get(
            "/ui/stations", params={"q": "FLT-", "size": 5, "sort": "id", "dir": "desc", "offset": 5}
        )
        assert re.findall(r'href="/ui/stations/(FLT-\d)"', second.text) == ["FLT-1", "FLT-0"]
        for sort in ("vendor", "model", "firmware", "last_seen", "owner"):
            by = await http.get("/ui/stations", params={"q": "FLT-", "sort": sort, "dir": "desc", "state": "offline"})
            assert len(re.findall(r'href="/ui/stations/(FLT-\d)"', by.text)) == 7, (sort, by.text[:300])
        assert (await http.get("/ui/stations", params={"state": "nonsense"})).status_code == 400
        fragment = await http.get("/ui/stations", params={"q": "FLT-", "fragment": "live"})
        assert fragment.text.lstrip().startswith('<div data-live-block="live">')
        export = await http.get("/ui/sessions.csv")
        assert export.status_code == 200 and export.text.startswith("id,station_id")


async def test_each_live_block_of_the_station_page_renders_alone(csms: Running) -> None:
    await csms.put_station("BLK-1")
    async with client(csms) as http:
        await sign_in(http, TOKEN)
        full = await http.get("/ui/stations/BLK-1")
        assert all(part in full.text for part in ("Current session", "Configuration keys", 'data-command="Reset"'))
        live = await http.get("/ui/stations/BLK-1", params={"fragment": "live"})
        assert live.text.lstrip().startswith('<div data-live-block="live"') and "Current session" in live.text
        ops = await http.get("/ui/stations/BLK-1", params={"fragment": "ops"})
        assert ops.text.lstrip().startswith('<div data-live-block="ops"') and "Configuration keys" in ops.text
        assert "Configuration keys" not in live.text and "Current session" not in ops.text


async def test_blocking_and_unblocking_a_tag_keeps_its_token_type(csms: Running) -> None:
    """A 2.0.1 token's type is part of its authorization (another type is Invalid): the console's block, expire
    and unblock change the status or expiry only."""
    await csms.put_id_tag("TYPED-CONSOLE", type="eMAID", parent_id_tag="GROUP-C")
    async with client(csms) as http:
        csrf = await sign_in(http, TOKEN)
        for what in ("block", "unblock", "expire"):
            assert (await http.post(f"/ui/id-tags/TYPED-CONSOLE/{what}", data={"csrf": csrf})).status_code == 303
    async with csms.api() as api:
        tag = (await api.get("/api/v1/id-tags/TYPED-CONSOLE")).json()
    assert (tag["type"], tag["parent_id_tag"], tag["status"]) == ("eMAID", "GROUP-C", "Accepted")
    assert tag["expiry_date"] is not None
