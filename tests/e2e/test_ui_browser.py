"""The Headroom page as a user sees it: real Airflow (``airflow dags test capacity_report``, then the API server with
the plugin), Debian Chromium driven by Playwright through the login form, and plain HTTP refused without a token."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

import boto3
import pandas as pd
import pytest

from scripts.pipeline_run import dags_test
from tests.conftest import AIRFLOW, PROJECT_ROOT
from tests.include.report.results import AS_OF, fleet_results_dir
from tests.servers import free_port, moto_server  # noqa: F401 (fixture)

pytestmark = pytest.mark.e2e
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
BUCKET, PREFIX = "headroom-reports", "daily"
ENDPOINTS = ["/headroom/", "/headroom/latest.html", "/headroom/services/search-api.html", "/headroom/api/latest.json",
             "/headroom/api/services/search-api"]


def _http(url: str, token: str | None = None, data: bytes | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if data else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=20) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


@pytest.fixture(scope="module")
def airflow_ui(tmp_path_factory, moto_server):  # noqa: F811 (fixture)
    """The fleet's results in a store, the report written by ``airflow dags test capacity_report`` (copied to S3 on moto),
    then the API server (with the Headroom plugin) on a free loopback port; stopped with SIGINT afterwards."""
    home = tmp_path_factory.mktemp("airflow-ui")
    shutil.copytree(fleet_results_dir(), home / "data")
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "HEADROOM_DATA_DIR": str(home / "data"),
        "HEADROOM_REPORTS_DIR": str(home / "reports"),
        "HEADROOM_REPORT_S3_URL": f"s3://{BUCKET}/{PREFIX}",
        "AIRFLOW_CONN_AWS_DEFAULT": moto_server.aws_conn(),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
    }
    # the DAG file itself, alone in the DAGs folder: `dags test` parses only what it runs
    (home / "dags").mkdir()
    (home / "dags" / "capacity_report.py").symlink_to(PROJECT_ROOT / "dags" / "capacity_report.py")
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(home / "dags")
    boto3.client("s3", endpoint_url=moto_server.url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
    dag_run = dags_test("capacity_report", AS_OF.to_pydatetime(), env=env, log_dir=home / "dags-test-logs")
    log = home / "api-server.log"
    with log.open("w") as fh:
        proc = subprocess.Popen([AIRFLOW, "api-server", "--port", str(port)], env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while _http(f"{base}/api/v2/monitor/health")[0] != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the API server did not come up (exit {proc.poll()}):\n{log.read_text()[-3000:]}")
            time.sleep(2)
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        yield {"base": base, "home": home, "env": env, "dag_run": dag_run, "password": password, "s3": moto_server}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _token(ui) -> str:
    status, body = _http(f"{ui['base']}/auth/token", data=json.dumps({"username": "admin", "password": ui["password"]}).encode())
    assert status in (200, 201), body
    return json.loads(body)["access_token"]


def test_capacity_report_dag_writes_the_report_and_copies_it_to_s3(airflow_ui, config):
    run = airflow_ui["dag_run"]
    assert run.ok, run.log.read_text()[-3000:]
    reports = airflow_ui["home"] / "reports"
    twin = json.loads((reports / "latest.json").read_text())
    assert twin["as_of"] == AS_OF.isoformat() and twin["run_date"] == f"{AS_OF:%Y-%m-%d}"
    assert [o["service"] for o in twin["overview"]][0] == "search-api"
    assert (reports / f"capacity_report_{AS_OF:%Y-%m-%d}.html").read_text() == (reports / "latest.html").read_text()
    assert sorted(p.stem for p in (reports / "services").glob("*.html")) == sorted(s.name for s in config.services)
    assert not any((reports / ".staging").glob("*"))  # the run's figures and plots are removed once the report is written
    s3 = boto3.client("s3", endpoint_url=airflow_ui["s3"].url, region_name="us-east-1")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/")["Contents"]}
    assert {f"{PREFIX}/latest.html", f"{PREFIX}/latest.json", f"{PREFIX}/capacity_report_{AS_OF:%Y-%m-%d}.json"} <= keys
    assert {f"{PREFIX}/services/{s.name}.html" for s in config.services} <= keys
    body = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/latest.json")["Body"].read()
    assert json.loads(body) == twin


def test_plugin_endpoints_refuse_requests_without_a_valid_token(airflow_ui):
    base = airflow_ui["base"]
    for path in ENDPOINTS:
        assert _http(f"{base}{path}")[0] == 401, path
        assert _http(f"{base}{path}", token="not-a-jwt")[0] in (401, 403), path
    token = _token(airflow_ui)
    for path in ENDPOINTS:
        status, body = _http(f"{base}{path}", token=token)
        assert status == 200, (path, body[:300])
    _, body = _http(f"{base}/api/v2/plugins", token=token)
    plugin = next(p for p in json.loads(body)["plugins"] if p["name"] == "headroom_ui")
    assert [(v["name"], v["href"], v["url_route"]) for v in plugin["external_views"]] == [("Headroom", "/headroom/", "headroom")]
    assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == ["/headroom"]
    _, body = _http(f"{base}/headroom/api/latest.json", token=token)
    assert json.loads(body) == json.loads((airflow_ui["home"] / "reports" / "latest.json").read_text())
    assert _http(f"{base}/headroom/services/..%2F..%2Fetc%2Fpasswd.html", token=token)[0] == 404
    assert _http(f"{base}/headroom/api/services/no-such-service", token=token)[0] == 404


def test_headroom_page_in_chromium_after_login(airflow_ui, config):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    base = airflow_ui["base"]
    twin = json.loads((airflow_ui["home"] / "reports" / "latest.json").read_text())
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/plugin/headroom")
            page.locator("input[name='username']").fill("admin")
            page.locator("input[name='password']").fill(airflow_ui["password"])
            page.locator("button[type='submit']").click()
            page.wait_for_url(lambda url: "/auth/login" not in url, timeout=30_000)
            if "/plugin/headroom" not in page.url:
                page.goto(f"{base}/plugin/headroom")
            frame_el = page.wait_for_selector("iframe[src*='/headroom/']", timeout=30_000)
            frame = frame_el.content_frame()
            frame.wait_for_selector("table#overview", timeout=30_000)
            assert "Fleet overview" in frame.inner_text("body")
            rows = frame.locator("table#overview tr:has(td)")
            assert rows.count() == len(config.services)
            first = [c.get_attribute("data-value") for c in rows.nth(0).locator("td").all()]
            assert json.loads(first[0]) == twin["overview"][0]["service"]
            page.screenshot(path=str(ARTIFACTS / "headroom_ui_overview.png"))

            page.goto(f"{base}/headroom/services/search-api.html")
            img = page.wait_for_selector("img.forecast", timeout=30_000)
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img, timeout=30_000)
            assert img.evaluate("img => img.naturalWidth") > 0
            saturation = next(o["saturation_at"] for o in twin["overview"] if o["service"] == "search-api")
            assert saturation and f"{pd.Timestamp(saturation):%Y-%m-%d %H:%M}" in page.inner_text("table#overview")
            img.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "headroom_ui_search_api.png"), full_page=True)
        finally:
            browser.close()
