"""Great Expectations Data Docs under the reports directory: GX's pages per suite run, a page per batch, an index of batches.

Layout (``<reports>/data_docs``): ``gx/`` is one GX Data Docs site (its static assets are
written once, not per batch; ``gx/validations/...`` holds a page per suite run);
``<batch_id>/index.html`` lists a batch's suite runs with links to their GX pages; ``index.html``
lists every batch, newest first.
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from include.headroom.fileio import safe_filename, write_atomic
from include.headroom.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd

    from include.headroom.validation.suites import ValidationOutcome

DOCS_FOLDER = "data_docs"
GX_SITE = "gx"
SITE_NAME = "headroom"
_STYLE = "<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}tr.failed{background:#fdd}</style>"


def docs_root(reports_dir: str | Path | None = None) -> Path:
    """Where Data Docs live: ``<reports>/data_docs``."""
    from include.headroom.config import reports_dir as default_reports_dir

    return Path(reports_dir or default_reports_dir()) / DOCS_FOLDER


def _folder(name: str) -> str:
    return safe_filename(name)


def _site(context: Any, base: Path) -> None:
    config = {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(base)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    if SITE_NAME in (context.variables.data_docs_sites or {}):
        context.update_data_docs_site(SITE_NAME, config)
    else:
        context.add_data_docs_site(SITE_NAME, config)


def render_batch_docs(outcome: ValidationOutcome, validated_at: Any, reports_dir: str | Path | None = None) -> Path:
    """Render the batch's GX validation results into the shared site and write the batch's page; return its path.

    Re-validating a batch replaces its pages.
    """
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from include.headroom.validation.suites import gx_context

    root = docs_root(reports_dir)
    site = root / GX_SITE
    folder = _folder(outcome.batch_id)
    for old in (site / "validations").glob(f"*/{folder}"):
        shutil.rmtree(old, ignore_errors=True)
    context = gx_context()
    _site(context, site)
    store = context.validation_results_store
    run_id = RunIdentifier(run_name=folder, run_time=utc(validated_at).to_pydatetime())
    entries = []
    for label, result in outcome.suite_results:
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=_folder(label).replace(".", "_")),  # GX nests on dots
            run_id=run_id,
            batch_identifier=folder,
        )
        store.set(key, _slim(result))
        entries.append((label, result, key))
    keys = [key for _, _, key in entries]
    try:
        context.build_data_docs(site_names=[SITE_NAME], resource_identifiers=keys, build_index=False)
        links = {}
        for label, _, key in entries:
            urls = context.get_docs_sites_urls(resource_identifier=key, site_name=SITE_NAME)
            url = urls[0].get("site_url") if urls else None
            links[label] = Path(unquote(urlparse(url).path)) if url else None
    finally:
        for key in keys:
            store.remove_key(key)
    return _write_batch_page(root / folder, outcome, links)


def _slim(result: Any, keep: int = 20) -> Any:
    """A copy of a GX suite result whose per-row lists are cut to ``keep`` entries (rendering every row of a big batch is slow)."""
    import copy

    slim = copy.copy(result)
    slim.results = []
    for r in result.results:
        r2 = copy.copy(r)
        r2.result = {
            k: (v[:keep] if isinstance(v, list) and k.startswith(("unexpected", "partial")) else v) for k, v in (r.result or {}).items()
        }
        slim.results.append(r2)
    return slim


def _write_batch_page(folder: Path, outcome: ValidationOutcome, links: dict[str, Path | None]) -> Path:
    import os

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, result in outcome.suite_results:
        failed = sorted({str(r.expectation_config.type) for r in result.results if not r.success})
        target = links.get(label)
        name = html.escape(label)
        if target is not None and target.exists():
            name = f'<a href="{html.escape(os.path.relpath(target, folder))}">{name}</a>'
        status = "passed" if not failed else "failed"
        rows.append(
            f"<tr class='{status}'><td>{name}</td><td>{status}</td><td>{len(result.results)}</td>"
            f"<td>{html.escape(', '.join(failed))}</td></tr>"
        )
    failure = f"<p><b>{html.escape(outcome.batch_failure)}</b></p>" if outcome.batch_failure else ""
    warnings = "".join(
        f"<li>{html.escape(w['expectation'])}: {html.escape(str(w['service']))}/{html.escape(str(w['metric']))} "
        f"{html.escape(str(w['labels']))} ({w['rows']} rows)</li>"
        for w in outcome.warnings
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(outcome.batch_id)}</title>{_STYLE}</head><body>"
        f"<p><a href='../index.html'>all batches</a></p><h1>Batch {html.escape(outcome.batch_id)}</h1>{failure}"
        f"<p>{outcome.rows_in} rows in, {len(outcome.valid)} valid, {len(outcome.quarantined)} quarantined.</p>"
        "<table><tr><th>suite run (GX Data Docs)</th><th>status</th><th>expectations</th><th>failed</th></tr>"
        + "".join(rows)
        + "</table>"
        + (f"<h2>Warnings (rows kept)</h2><ul>{warnings}</ul>" if warnings else "")
        + "</body></html>"
    )
    path = folder / "index.html"
    write_atomic(path, page)
    return path


def write_docs_index(batches: pd.DataFrame, reports_dir: str | Path | None = None) -> Path:
    """``<reports>/data_docs/index.html``: every validated batch, newest first, linking its page."""
    root = docs_root(reports_dir)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    ordered = batches.sort_values("interval_end", ascending=False) if len(batches) else batches
    for b in ordered.itertuples():
        folder = _folder(str(b.batch_id))
        name = html.escape(str(b.batch_id))
        link = f'<a href="{html.escape(folder)}/index.html">{name}</a>' if (root / folder / "index.html").exists() else name
        rows.append(
            f"<tr class='{html.escape(str(b.status))}'><td>{link}</td><td>{html.escape(str(b.status))}</td><td>{b.rows_in}</td>"
            f"<td>{b.rows_valid}</td><td>{b.rows_quarantined}</td><td>{html.escape(str(b.interval_end))}</td></tr>"
        )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>headroom validation</title>{_STYLE}</head><body>"
        "<h1>Validated batches</h1><table><tr><th>batch</th><th>status</th><th>rows in</th><th>valid</th>"
        "<th>quarantined</th><th>interval end</th></tr>" + "".join(rows) + "</table></body></html>"
    )
    path = root / "index.html"
    write_atomic(path, page)
    return path
