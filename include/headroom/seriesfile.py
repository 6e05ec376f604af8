"""The one reader of ``timestamp,value`` CSV files that the forecast and replay commands share: columns, file lines, timestamps."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from include.headroom.exceptions import DataError, HeadroomError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

COLUMNS = ("timestamp", "value")


def read_timestamp_value_csv(path: str | Path, error: type[HeadroomError] = DataError) -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
    """Read ``path`` as text and parse its timestamps (ISO 8601, offsets honoured, naive read as UTC).

    :param error: the error class to raise (each command names its own family).
    :returns: the raw rows (strings, stripped column names), their UTC timestamps and each row's file line
        (the header is line 1).
    :raises: ``error``, naming the file, and the line and field of the first unreadable timestamp.
    """
    import numpy as np
    import pandas as pd

    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not a readable CSV file ({exc})") from exc
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise error(f"{path}: columns {missing} are missing (got {list(raw.columns)}); the file needs a header 'timestamp,value'")
    line = np.arange(len(raw)) + 2
    ds = pd.to_datetime(raw["timestamp"].str.strip(), errors="coerce", utc=True, format="ISO8601")
    bad = ds.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise error(f"{path}: line {line[i]}: field 'timestamp' = {raw['timestamp'].iloc[i]!r} is not a timestamp "
                    f"({int(bad.sum())} such rows); use ISO 8601, e.g. 2026-11-01T13:00:00Z")
    return raw, ds, line
