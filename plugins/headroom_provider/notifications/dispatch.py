"""Delivering notices: each routed channel tried through the kit's ``retry()`` (Retry-After honoured), errors redacted, never raised."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

if TYPE_CHECKING:
    from headroom_provider.notifications.channels import AlertChannel

    from include.headroom.alerts.lifecycle import DeliveryResult, Notice
    from include.headroom.alerts.settings import AlertSettings

log = logging.getLogger("headroom.alerts")


def redact(text: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    return status if isinstance(status, int) else None


def _retry_after(exc: BaseException) -> str | None:
    """The ``Retry-After`` header of the answer an error carries, as sent (seconds or an HTTP date)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        return headers.get("Retry-After") or headers.get("retry-after")
    except AttributeError:
        return None


def _refused(exc: BaseException) -> bool:
    """A 4xx answer other than 429: the notice itself was refused and would fail the same way again."""
    status = _status(exc)
    return status is not None and 400 <= status < 500 and status != 429


def build_channels(settings: AlertSettings) -> dict[str, AlertChannel]:
    from headroom_provider.notifications.channels import CHANNEL_TYPES

    retries = max(0, settings.delivery.attempts - 1)
    return {name: CHANNEL_TYPES[c.type](c, retries_429=retries) for name, c in settings.channels.items()}


class Dispatcher:
    """Sends a notice to each of its channels; a channel that keeps failing is recorded as failed, the run goes on."""

    def __init__(self, settings: AlertSettings, channels: dict[str, AlertChannel] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.channels = channels if channels is not None else build_channels(settings)
        self.sleep = sleep

    def __repr__(self) -> str:
        return f"Dispatcher(channels={sorted(self.channels)})"

    def __call__(self, notice: Notice) -> list[DeliveryResult]:
        return [self.deliver_one(name, notice) for name in notice.channels]

    def deliver_one(self, name: str, notice: Notice) -> DeliveryResult:
        """Send ``notice`` to channel ``name`` with the ``alerts.yaml`` delivery policy; the outcome, never an error."""
        from include.headroom.alerts.lifecycle import DeliveryResult
        from include.headroom.exceptions import RetryExhaustedError
        from include.headroom.resilience import RetryPolicy, retry

        channel = self.channels[name]
        delivery = self.settings.delivery
        policy = RetryPolicy(attempts=delivery.attempts, base_delay_s=delivery.backoff_s, max_delay_s=delivery.max_backoff_s)
        attempts = 0

        def send() -> Any:
            nonlocal attempts
            attempts += 1
            return channel.send(notice)

        def on_retry(retry_number: int, exc: BaseException, delay_s: float) -> None:
            log.warning("Alert channel %s failed (attempt %d of %d): %s; retrying in %.1f s", name, retry_number + 1,
                        policy.attempts, self._describe(channel, exc), delay_s)

        try:
            ref = retry(send, policy, what=f"alert channel {name}", retryable=lambda exc: not _refused(exc),
                        retry_after=_retry_after, on_retry=on_retry, sleep=self.sleep)
        except Exception as exc:  # any channel error is recorded (redacted), never raised: alerts must not stop the pipeline
            last = exc.__cause__ if isinstance(exc, RetryExhaustedError) and exc.__cause__ is not None else exc
            error = self._describe(channel, last)
            if _refused(last):
                log.error("Alert channel %s refused %s %s: %s", name, notice.action.value, notice.incident_key, error)
            else:
                log.error("Alert channel %s failed %d times for %s %s; recorded as failed: %s", name, attempts,
                          notice.action.value, notice.incident_key, error)
            return DeliveryResult(channel=name, state="failed", error=error, attempts=attempts)
        if ref == "skipped":
            return DeliveryResult(channel=name, state="skipped", attempts=attempts)
        log.info("Alert %s %s sent to %s", notice.action.value, notice.incident_key, name)
        return DeliveryResult(channel=name, state="sent", ref=ref if ref != "logged" else None, attempts=attempts)

    @staticmethod
    def _describe(channel: AlertChannel, exc: BaseException) -> str:
        try:
            secrets = channel.secrets()
        except Exception:  # the connection itself is unreadable: say so without its content
            secrets = []
        status = _status(exc)
        text = f"{type(exc).__name__}" + (f" (HTTP {status})" if status is not None else "") + f": {exc}"
        return redact(text, secrets)[:300]


def connection_exists(conn_id: str) -> bool:
    from airflow.sdk import BaseHook

    try:
        BaseHook.get_connection(conn_id)
    except Exception:  # AirflowNotFoundException and friends: the connection is not defined
        return False
    return True


def alert_settings(check_connections: bool = True) -> AlertSettings:
    """``alerts.yaml`` validated, with every channel's connection checked against Airflow's connections."""
    from include.headroom.alerts.settings import load_alert_settings

    return load_alert_settings(connection_exists=connection_exists if check_connections else None)


def mask(channels: dict[str, Any]) -> None:
    """Register every channel secret with Airflow's log masker."""
    from airflow.sdk.log import mask_secret

    for channel in channels.values():
        for secret in channel.secrets():
            mask_secret(secret)
