"""Time helpers: every timestamp headroom handles is a UTC ``pandas.Timestamp``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from include.headroom.exceptions import DataError

if TYPE_CHECKING:
    import pandas as pd


def utc(value: Any) -> pd.Timestamp:
    """``value`` (string, datetime, Timestamp) as a UTC Timestamp; naive values are taken as UTC."""
    import pandas as pd

    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{value!r} is not a timestamp: {exc}") from exc
    if ts is pd.NaT:
        raise DataError(f"{value!r} is not a timestamp")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
