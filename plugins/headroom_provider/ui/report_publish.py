"""Copying a written report to S3 through the amazon provider's ``S3Hook`` (the hook owns the connection)."""

from __future__ import annotations

from pathlib import Path
from collections.abc import Mapping


def publish_report(paths: Mapping[str, Path], bucket: str, prefix: str, aws_conn_id: str) -> list[str]:
    """Upload the report's files (dated and latest pages, the JSON twin, the drill-down pages) under ``s3://bucket/prefix/``.

    Files keep their names relative to the report folder; an existing key is replaced, so a re-run
    of the same day overwrites its report instead of adding one.

    :returns: the ``s3://`` URLs written.
    """
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    hooks = {suffix: S3Hook(aws_conn_id=aws_conn_id, extra_args={"ContentType": content_type})
             for suffix, content_type in ((".json", "application/json"), (".html", "text/html; charset=utf-8"))}
    root = Path(paths["latest_html"]).parent
    files = [Path(paths[k]) for k in ("html", "json", "latest_html", "latest_json")]
    files += sorted(Path(paths["services"]).glob("*.html"))
    urls = []
    for path in files:
        key = "/".join(p for p in (prefix.strip("/"), path.relative_to(root).as_posix()) if p)
        hooks[path.suffix].load_file(str(path), key=key, bucket_name=bucket, replace=True)
        urls.append(f"s3://{bucket}/{key}")
    return urls
