"""File connectors against real servers: S3 in moto server mode, SFTP against OpenSSH's sshd; S3 as landing target."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
import os
import time

import pandas as pd
import pytest

from include.headroom.connectors.base import read_watermark
from include.headroom.connectors.engine import S3Lander, pull, watermark_source
from include.headroom.connectors.files import S3Connector, SFTPConnector
from include.headroom.exceptions import ConnectorError
from tests.connectors_api import HubSpotApi, SshdServer
from tests.include.connectors.conftest import creds_for, fast
from tests.servers import moto_server  # noqa: F401 - the session fixture


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = SshdServer(tmp_path_factory.mktemp("sshd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(moto_server):
    import boto3

    client = boto3.client("s3", endpoint_url=moto_server.url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")

    def empty() -> None:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket="headroom-exchange"):
            for item in page.get("Contents", []):
                client.delete_object(Bucket="headroom-exchange", Key=item["Key"])

    # The moto server lives for the session: another test (the connector_sync DAG) may have used this bucket.
    client.create_bucket(Bucket="headroom-exchange")
    empty()
    yield client
    empty()
    client.delete_bucket(Bucket="headroom-exchange")


def test_s3_objects_by_prefix_and_last_modified(s3, store, tmp_path):
    for i in range(7):
        s3.put_object(Bucket="headroom-exchange", Key=f"exports/cost/2026-11-0{i + 1}.csv", Body=f"service,cost\na,{i}\n".encode())
    s3.put_object(Bucket="headroom-exchange", Key="elsewhere/skip.csv", Body=b"x")
    connector = S3Connector(fast("aws_s3", page_size=3), s3, tmp_path / "files")
    report = pull(store, connector, "cost_exports")
    assert (report.read, report.landed, report.pages) == (7, 7, 3)
    assert report.calls == 3 + 7  # three listings, seven downloads
    landed = store.read("connector_records", connector="aws_s3")
    assert sorted(landed["record_id"]) == [f"exports/cost/2026-11-0{i + 1}.csv" for i in range(7)]
    payload = json.loads(landed[landed["record_id"] == "exports/cost/2026-11-03.csv"].iloc[0]["payload"])
    assert payload["size"] == 17 and Path(payload["local_path"]).read_text() == "service,cost\na,2\n"

    time.sleep(1.1)  # S3 last-modified has a one-second resolution
    s3.put_object(Bucket="headroom-exchange", Key="exports/cost/2026-11-08.csv", Body=b"service,cost\nb,9\n")
    again = pull(store, S3Connector(fast("aws_s3", page_size=3), s3, tmp_path / "files"), "cost_exports")
    assert again.landed == 1 and store.count("connector_records") == 8
    newest = s3.head_object(Bucket="headroom-exchange", Key="exports/cost/2026-11-08.csv")["LastModified"]
    assert read_watermark(store, watermark_source("aws_s3", "cost_exports")) == pd.Timestamp(newest)


def test_s3_missing_bucket_is_named(s3, store, tmp_path):
    settings = fast("aws_s3", options={"bucket": "no-such-bucket"})
    with pytest.raises(ConnectorError, match=r"listing s3://no-such-bucket/exports/cost/ failed: .*NoSuchBucket"):
        pull(store, S3Connector(settings, s3, tmp_path / "files"), "cost_exports")


def test_records_land_in_s3_idempotently(s3, hubspot_api_local, store, tmp_path):
    from include.headroom.connectors.registry import build_http_connector

    hubspot_api_local.seed("companies", 30)
    lander = S3Lander(s3, "headroom-exchange", "landing/")
    connector = build_http_connector(fast("hubspot"), creds_for(hubspot_api_local), tmp_path / "state")
    first = pull(store, connector, "companies", lander=lander)
    assert first.landed == 30
    store.delete("watermarks", pd.DataFrame([{"source": watermark_source("hubspot", "companies")}]))
    pull(store, connector, "companies", lander=lander)  # everything again: same keys, replaced
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="headroom-exchange", Prefix="landing/")["Contents"]]
    assert len(keys) == 30 and "landing/hubspot/companies/1000/2026-11-01T00%3A00%3A00%2B00%3A00.json" in keys
    doc = json.loads(s3.get_object(Bucket="headroom-exchange", Key=keys[0])["Body"].read())
    assert doc["connector"] == "hubspot" and doc["payload"]["name"].startswith("Company ")
    assert store.count("connector_records") == 0  # landed in S3, not the store


@pytest.fixture
def hubspot_api_local():
    server = HubSpotApi().start()
    yield server
    server.stop()


def _remote_files(sshd, client, folder, files):
    for path in (folder.rsplit("/", 2)[0], folder.rsplit("/", 1)[0], folder):
        with contextlib.suppress(OSError):
            client.mkdir(path)
    for name, (data, mtime) in files.items():
        with client.open(f"{folder}/{name}", "wb") as fh:
            fh.write(data)
        client.utime(f"{folder}/{name}", (mtime, mtime))


def test_sftp_new_files_by_mtime_resumable_and_size_verified(sshd, store, tmp_path):
    client = sshd.sftp()
    folder = str(tmp_path / "remote" / "outbound" / "capacity")
    base = int(pd.Timestamp("2026-11-01", tz="UTC").timestamp())
    big = os.urandom(300_000)
    _remote_files(sshd, client, folder, {
        "a.csv": (b"service,value\na,1\n", base), "b.csv": (big, base + 60), "notes.txt": (b"skip me", base + 90),
    })
    settings = fast("sftp", options={"chunk_bytes": 65536})
    spec_path = {"path": folder}
    settings = settings.with_(objects={"mainframe_extracts": settings.objects["mainframe_extracts"].__class__(
        **{**settings.objects["mainframe_extracts"].__dict__, "options": {**settings.objects["mainframe_extracts"].options, **spec_path}})})

    # a transfer of b.csv broke off after 100 000 bytes: the next run resumes it
    dest = tmp_path / "files" / "mainframe_extracts" / folder.lstrip("/") / "b.csv"
    dest.parent.mkdir(parents=True)
    dest.with_name("b.csv.part").write_bytes(big[:100_000])
    connector = SFTPConnector(settings, client, tmp_path / "files")
    report = pull(store, connector, "mainframe_extracts")
    assert (report.read, report.landed) == (2, 2)
    assert connector.resumed == [f"{folder}/b.csv"] and connector.bytes_downloaded == len(b"service,value\na,1\n") + 200_000
    assert dest.read_bytes() == big and not dest.with_name("b.csv.part").exists()
    assert read_watermark(store, watermark_source("sftp", "mainframe_extracts")) == pd.Timestamp(base + 60, unit="s", tz="UTC")

    _remote_files(sshd, client, folder, {"c.csv": (b"service,value\nc,3\n", base + 120)})
    again = SFTPConnector(settings, client, tmp_path / "files")
    report = pull(store, again, "mainframe_extracts")
    assert report.read == 2 and report.landed == 1  # b.csv (at the watermark, unchanged) and the new c.csv
    assert again.bytes_downloaded == len(b"service,value\nc,3\n")  # b.csv is already complete locally
    landed = store.read("connector_records", connector="sftp")
    assert sorted(landed["record_id"]) == [f"{folder}/{n}" for n in ("a.csv", "b.csv", "c.csv")]
    assert json.loads(landed[landed["record_id"].str.endswith("b.csv")].iloc[0]["payload"])["size"] == 300_000


def test_sftp_size_mismatch_keeps_the_partial_file(sshd, store, tmp_path):
    client = sshd.sftp()
    folder = str(tmp_path / "remote" / "outbound" / "capacity")
    _remote_files(sshd, client, folder, {"d.csv": (b"0123456789", 1_700_000_000)})
    connector = SFTPConnector(fast("sftp"), client, tmp_path / "files")
    dest = tmp_path / "files" / "x" / "d.csv"
    with pytest.raises(ConnectorError, match=r"d.csv transferred 10 bytes but the server lists 12; the partial file .* is kept"):
        connector.download(f"{folder}/d.csv", dest, 12)
    assert dest.with_name("d.csv.part").stat().st_size == 10 and not dest.exists()
