"""Report settings from ``report.yaml``: a frozen dataclass that validates itself."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from include.headroom.configfile import config_directory, read_once
from include.headroom.exceptions import ConfigError

REPORT_FILE = "report.yaml"
S3_URL_ENV = "HEADROOM_REPORT_S3_URL"


@dataclass(frozen=True)
class ReportSettings:
    """What the report draws and where it is copied.

    :param history_days: days of history before the forecast in each service's plot.
    :param plot_metric: the load metric whose forecast and capacity line are plotted.
    :param actions_per_service: newest audit records listed per service.
    :param other_actions: newest audit records not tied to a catalog service (connector syncs...) listed for the fleet.
    :param accuracy_runs: newest forecast runs shown in the accuracy-over-time table.
    :param dpi: resolution of the PNG plots.
    :param detailed_services: services (most urgent first) whose whole section, plot included, is in the fleet
        page; every service keeps its overview row and its drill-down page.
    :param s3_url: ``s3://bucket/prefix`` to copy the report to, or empty.
    :param s3_conn_id: the Airflow connection the S3 copy uses.
    """

    history_days: int = 14
    plot_metric: str = "throughput"
    actions_per_service: int = 10
    other_actions: int = 20
    accuracy_runs: int = 30
    dpi: int = 90
    detailed_services: int = 25
    s3_url: str = ""
    s3_conn_id: str = "aws_default"

    def __post_init__(self) -> None:
        for name in ("history_days", "actions_per_service", "other_actions", "accuracy_runs", "dpi", "detailed_services"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{REPORT_FILE}: {name}={value!r} must be a whole number >= 1")
        if self.s3_url and not self.s3_url.startswith("s3://"):
            raise ConfigError(f"{REPORT_FILE}: s3_url={self.s3_url!r} must start with s3:// (or be empty)")

    @property
    def s3_target(self) -> tuple[str, str] | None:
        """``(bucket, prefix)`` of :attr:`s3_url`, or ``None`` when the report stays local."""
        if not self.s3_url:
            return None
        bucket, _, prefix = self.s3_url[len("s3://"):].partition("/")
        if not bucket:
            raise ConfigError(f"{REPORT_FILE}: s3_url={self.s3_url!r} names no bucket")
        return bucket, prefix.strip("/")


def load_report_settings(config_dir: str | Path | None = None) -> ReportSettings:
    """Read ``report.yaml`` from the configuration folder; ``$HEADROOM_REPORT_S3_URL`` overrides ``s3_url``.

    :raises ConfigError: naming the file and field when a value is invalid or a field is unknown.
    """
    directory = config_directory(config_dir)
    path = directory / REPORT_FILE
    raw = read_once(path) if path.exists() else {}
    known = set(ReportSettings.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown fields {unknown}; known are {sorted(known)}")
    if os.environ.get(S3_URL_ENV) is not None:
        raw["s3_url"] = os.environ[S3_URL_ENV]
    return ReportSettings(**raw)
