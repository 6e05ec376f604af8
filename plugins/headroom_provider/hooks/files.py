"""MetricsFilesHook: CSV and Parquet metric files, local or on S3 (through the amazon provider's S3Hook)."""

from __future__ import annotations

import fnmatch
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from include.headroom.config import HeadroomConfig
    from include.headroom.metrics.files import FileSource
    from include.headroom.metrics.source_config import FileSettings


class S3FileReader:
    """``s3://bucket/key`` (one object), ``s3://bucket/prefix/`` (every .csv/.parquet under it) or a glob over keys."""

    def __init__(self, hook: S3Hook) -> None:
        self.hook = hook

    def list(self, pattern: str) -> list[str]:
        from include.headroom.exceptions import SourceError

        bucket, key = self.hook.parse_s3_url(pattern)
        if any(ch in key for ch in "*?["):
            prefix = key.split("*", 1)[0].split("?", 1)[0].split("[", 1)[0]
            keys = [k for k in self.hook.list_keys(bucket_name=bucket, prefix=prefix) if fnmatch.fnmatchcase(k, key)]
        elif key.endswith("/") or not key:
            keys = [k for k in self.hook.list_keys(bucket_name=bucket, prefix=key) if k.lower().endswith((".csv", ".parquet"))]
        else:
            keys = [key] if self.hook.check_for_key(key, bucket_name=bucket) else []
        if not keys:
            raise SourceError(f"source 'files': no S3 object matches s3://{bucket}/{key}")
        return [f"s3://{bucket}/{k}" for k in sorted(keys)]

    def read_bytes(self, uri: str) -> bytes:
        from botocore.exceptions import ClientError

        from include.headroom.exceptions import SourceError

        bucket, key = self.hook.parse_s3_url(uri)
        try:
            return self.hook.get_key(key, bucket_name=bucket).get()["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "?")
            raise SourceError(f"source 'files': cannot read s3://{bucket}/{key}: {code}: {exc}") from exc


class MetricsFilesHook(BaseHook):
    """Metric files. Local paths need no connection; ``s3://`` paths use the AWS connection ``aws_conn_id``."""

    conn_name_attr = "aws_conn_id"
    default_conn_name = "aws_default"
    conn_type = "aws"
    hook_name = "headroom metric files"

    def __init__(self, aws_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id

    @cached_property
    def s3(self) -> S3Hook:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id)

    def get_conn(self) -> S3FileReader:
        return S3FileReader(self.s3)

    def get_source(self, config: HeadroomConfig, settings: FileSettings | None = None) -> FileSource:
        from include.headroom.metrics.files import FileSource
        from include.headroom.metrics.source_config import load_source_settings

        settings = settings or load_source_settings().files
        readers = {"s3": self.get_conn()} if any(p.startswith("s3://") for p in settings.paths) else {}
        self.log.info("Metric files from %s", list(settings.paths))
        return FileSource(settings, config, readers=readers)

    def test_connection(self) -> tuple[bool, str]:
        from include.headroom.config import get_config
        from include.headroom.exceptions import SourceError

        source = self.get_source(get_config())
        try:
            found = [uri for pattern in source.settings.paths for uri in source._reader(pattern).list(pattern)]
        except SourceError as exc:
            return False, str(exc)
        if not found:
            return False, "sources.yaml files.paths is empty"
        return True, f"{len(found)} metric files found, e.g. {found[0]}"
