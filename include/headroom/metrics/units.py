"""Unit normalization on the way in: values are converted to their metric's canonical unit, the source's unit is kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

from include.headroom.exceptions import DataError

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.metrics.source_config import UnitSettings

ORIGINAL_UNIT = "original_unit"


def conversion_factor(units: UnitSettings, from_unit: str, to_unit: str) -> float:
    """The factor that turns a value in ``from_unit`` into ``to_unit``.

    :raises DataError: when either unit is unknown or they measure different things.
    """
    src = units.aliases.get(from_unit, from_unit)
    dst = units.aliases.get(to_unit, to_unit)
    if src not in units.factors:
        raise DataError(f"unit {from_unit!r} is unknown; known units are {sorted(units.factors)} (add it to sources.yaml units.factors)")
    (src_dim, src_factor), (dst_dim, dst_factor) = units.factors[src], units.factors[dst]
    if src_dim != dst_dim:
        raise DataError(f"unit {from_unit!r} ({src_dim}) cannot be converted to {to_unit!r} ({dst_dim})")
    return src_factor / dst_factor


def normalize_units(rows: pd.DataFrame, units: UnitSettings, source: str) -> pd.DataFrame:
    """A copy of ``rows`` with values in each metric's canonical unit and the source's unit in ``original_unit``.

    Metrics without a canonical unit keep theirs.

    :raises DataError: naming the source, series and field when a unit cannot be converted.
    """
    out = rows.copy()
    if ORIGINAL_UNIT not in out.columns or out[ORIGINAL_UNIT].isna().all():
        out[ORIGINAL_UNIT] = out["unit"] if "unit" in out.columns else ""
    if out.empty:
        return out
    values = out["value"].astype("float64").to_numpy(copy=True)
    new_units = out["unit"].astype(object).to_numpy(copy=True)
    for (metric, unit), index in out.groupby(["metric", ORIGINAL_UNIT], sort=True).groups.items():
        target = units.canonical.get(str(metric))
        if target is None or unit == target:
            continue
        try:
            factor = conversion_factor(units, str(unit), target)
        except DataError as exc:
            services = sorted(out.loc[index, "service"].astype(str).unique())
            raise DataError(f"source {source!r}, series {metric!r} of {services[:3]}: field 'unit': {exc}") from None
        positions = out.index.get_indexer(index)
        values[positions] = values[positions] * factor
        new_units[positions] = target
    out["value"] = values
    out["unit"] = new_units
    return out


def source_units(rows: pd.DataFrame, source: str, units: UnitSettings) -> pd.DataFrame:
    """One ``source_units`` row per series of normalized ``rows``: the source's unit, the stored unit, the factor between."""
    import pandas as pd

    series = rows[["service", "metric", "labels", ORIGINAL_UNIT, "unit"]].drop_duplicates(["service", "metric", "labels"], keep="last")
    factors = {
        (orig, unit): (1.0 if orig == unit else conversion_factor(units, str(orig), str(unit)))
        for orig, unit in series[[ORIGINAL_UNIT, "unit"]].drop_duplicates().itertuples(index=False)
    }
    return series.assign(
        source=source,
        factor=[factors[(o, u)] for o, u in series[[ORIGINAL_UNIT, "unit"]].itertuples(index=False)],
        updated_at=pd.Timestamp.now(tz="UTC"),
    )
