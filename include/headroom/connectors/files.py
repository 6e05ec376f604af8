"""File-shaped connectors: S3 objects by prefix and last-modified, SFTP files by modification time.

Both land a record per file (id = key or path, version = ETag or mtime:size) and download the file itself
under the connector's download folder, verifying its size after the transfer.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
import time
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from collections.abc import Iterator

from include.headroom.connectors.base import Record, TokenBucket
from include.headroom.connectors.http import CallStats
from include.headroom.exceptions import ConnectorError
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.connectors.settings import ConnectorSettings, ObjectSpec


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _Quota:
    def __init__(self, settings: ConnectorSettings, rate_limited: bool) -> None:
        q = settings.quota
        self.bucket = TokenBucket(rate=q.rate, capacity=q.burst) if rate_limited else None
        self.stats = CallStats()

    def call(self) -> None:
        if self.bucket is not None:
            before = self.bucket.waited_s
            self.bucket.acquire()
            self.stats.add(throttled_s=self.bucket.waited_s - before)
        self.stats.add(calls=1)


class S3Connector:
    """Lists ``bucket``/``prefix`` with ListObjectsV2 (``MaxKeys`` = page size, continuation tokens), keeps objects
    modified at or after the watermark, downloads each and checks its size against the listing.

    :param client: a boto3 S3 client (the amazon provider's ``S3Hook.get_conn()`` in Airflow).
    """

    def __init__(self, settings: ConnectorSettings, client: Any, download_dir: str | Path, rate_limited: bool = True) -> None:
        self.settings, self.client, self.download_dir = settings, client, Path(download_dir)
        self.bucket = str(settings.options.get("bucket", ""))
        self._quota = _Quota(settings, rate_limited)
        self.stats = self._quota.stats

    def read_changes(self, obj: ObjectSpec, since: pd.Timestamp | None) -> Iterator[list[Record]]:
        prefix = str(obj.options.get("prefix", ""))
        bucket = str(obj.options.get("bucket", self.bucket))
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": self.settings.page_size}
        while True:
            self._quota.call()
            try:
                page = self.client.list_objects_v2(**kwargs)
            except Exception as exc:  # botocore ClientError and friends: name the bucket, keep the remote's text
                raise ConnectorError(f"connector {self.settings.name!r}: listing s3://{bucket}/{prefix} failed: {exc}") from exc
            records = []
            for item in page.get("Contents", []):
                modified = utc(item["LastModified"])
                if since is not None and modified < since:
                    continue
                records.append(self._fetch(bucket, obj.name, item, modified))
            yield records
            if not page.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def _fetch(self, bucket: str, obj: str, item: dict[str, Any], modified: pd.Timestamp) -> Record:
        key, size, etag = item["Key"], int(item["Size"]), str(item["ETag"]).strip('"')
        dest = self.download_dir / obj / key
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not (dest.exists() and dest.stat().st_size == size):
            self._quota.call()
            tmp = dest.with_name(dest.name + ".part")
            self.client.download_file(bucket, key, str(tmp))
            if tmp.stat().st_size != size:
                raise ConnectorError(
                    f"connector {self.settings.name!r}: s3://{bucket}/{key} downloaded {tmp.stat().st_size} bytes, listing says {size}"
                )
            os.replace(tmp, dest)
        return Record(
            record_id=key,
            version=etag,
            modified=modified,
            payload={
                "bucket": bucket,
                "key": key,
                "size": size,
                "etag": etag,
                "modified": modified.isoformat(),
                "local_path": str(dest),
                "sha256": _sha256(dest),
            },
        )


class SFTPConnector:
    """New files under a remote folder by modification time; downloads resume from a ``.part`` file's size and
    are verified against the remote size before they count as landed.

    :param client: a paramiko ``SFTPClient`` (the SFTP provider's ``SFTPHook.get_conn()`` in Airflow).
    """

    def __init__(self, settings: ConnectorSettings, client: Any, download_dir: str | Path, rate_limited: bool = True) -> None:
        self.settings, self.client, self.download_dir = settings, client, Path(download_dir)
        self.chunk = int(settings.options.get("chunk_bytes", 1 << 20))
        self.verify = bool(settings.options.get("verify_size", True))
        self._quota = _Quota(settings, rate_limited)
        self.stats = self._quota.stats
        self.bytes_downloaded = 0
        self.resumed: list[str] = []

    def read_changes(self, obj: ObjectSpec, since: pd.Timestamp | None) -> Iterator[list[Record]]:
        folder = str(obj.options.get("path", "."))
        pattern = str(obj.options.get("pattern", "*"))
        self._quota.call()
        try:
            entries = self.client.listdir_attr(folder)
        except OSError as exc:
            raise ConnectorError(f"connector {self.settings.name!r}: cannot list {folder!r} on the SFTP server: {exc}") from exc
        files = sorted(
            (e for e in entries if stat.S_ISREG(e.st_mode or 0) and fnmatch.fnmatch(e.filename, pattern)),
            key=lambda e: (e.st_mtime, e.filename),
        )
        if since is not None:
            files = [e for e in files if utc(e.st_mtime * 1_000_000_000) >= since]
        for start in range(0, len(files), self.settings.page_size):
            yield [
                self._fetch(obj.name, str(PurePosixPath(folder) / e.filename), e) for e in files[start : start + self.settings.page_size]
            ]

    def download(self, remote: str, dest: Path, size: int) -> Path:
        """Resumable download of ``remote`` to ``dest`` (via ``dest.part``), verified against ``size``."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists() and dest.stat().st_size == size:
            return dest
        part = dest.with_name(dest.name + ".part")
        offset = part.stat().st_size if part.exists() else 0
        if offset > size:  # the remote file was replaced by a shorter one: start again
            part.unlink()
            offset = 0
        if offset:
            self.resumed.append(remote)
        self._quota.call()
        with self.client.open(remote, "rb") as src, part.open("ab") as out:
            src.seek(offset)
            src.prefetch(size - offset) if hasattr(src, "prefetch") and size > offset else None
            while True:
                data = src.read(self.chunk)
                if not data:
                    break
                out.write(data)
                self.bytes_downloaded += len(data)
        got = part.stat().st_size
        if self.verify and got != size:
            raise ConnectorError(
                f"connector {self.settings.name!r}: {remote} transferred {got} bytes but the server lists {size}; "
                f"the partial file {part} is kept and the next run resumes it"
            )
        os.replace(part, dest)
        return dest

    def _fetch(self, obj: str, remote: str, entry: Any) -> Record:
        size, mtime = int(entry.st_size), int(entry.st_mtime)
        dest = self.download_dir / obj / remote.lstrip("/")
        self.download(remote, dest, size)
        modified = utc(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime)))
        return Record(
            record_id=remote,
            version=f"{mtime}:{size}",
            modified=modified,
            payload={"path": remote, "size": size, "mtime": modified.isoformat(), "local_path": str(dest), "sha256": _sha256(dest)},
        )
