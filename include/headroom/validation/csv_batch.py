"""A metric batch from a CSV file in the canonical long schema, line by line: a line that cannot be split is kept, not lost.

Values are left as text, so validation decides what a bad field is (a word in ``value``, a
timestamp without a zone) and quarantines that row alone. A line with the wrong number of
fields becomes a row with ``parse_error`` set and the line in ``raw_line``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

from include.headroom.exceptions import SchemaError

if TYPE_CHECKING:
    import pandas as pd


def read_csv_batch(source: str | Path | io.TextIOBase, name: str | None = None) -> pd.DataFrame:
    """Rows of a CSV batch: one per non-blank data line, in file order, every field as text.

    :param source: a path, or an open text stream.
    :param name: how messages name the input (default: the path).
    :raises SchemaError: when the file has no header line.
    """
    import pandas as pd

    if isinstance(source, (str, Path)):
        label = name or str(source)
        text = Path(source).read_text(encoding="utf-8", errors="replace")
    else:
        label = name or "<stream>"
        text = source.read()
    lines = text.splitlines()
    header_at = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_at is None:
        raise SchemaError(f"{label}: no header line (expected the canonical columns, e.g. ts,service,tier,metric,value,unit,source,labels)")
    header = next(csv.reader([lines[header_at]]))
    records = []
    for number, line in enumerate(lines[header_at + 1 :], start=header_at + 2):
        if not line.strip():
            continue
        try:
            fields = next(csv.reader([line], strict=True))
        except csv.Error as exc:
            fields, error = None, f"{label}:{number}: {exc}"
        else:
            error = "" if len(fields) == len(header) else f"{label}:{number}: expected {len(header)} fields, got {len(fields)}"
        if error:
            records.append({**dict.fromkeys(header), "parse_error": error, "raw_line": line})
        else:
            # An empty field is a missing value (validation names it), except labels, where empty means none.
            values = {k: (v if v != "" or k == "labels" else None) for k, v in zip(header, fields, strict=False)}
            records.append({**values, "parse_error": "", "raw_line": ""})
    frame = pd.DataFrame(records, columns=[*header, "parse_error", "raw_line"], dtype=object)
    if "labels" in frame.columns:
        frame["labels"] = frame["labels"].fillna("")
    return frame
