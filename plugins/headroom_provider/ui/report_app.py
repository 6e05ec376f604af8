"""The FastAPI app behind the Headroom page: the newest report, a drill-down per service and the JSON twin.

Mounted by the Airflow API server under ``/headroom`` (see :mod:`headroom_provider.ui.headroom_ui`).
Every route requires a user logged in to Airflow (the ``_token`` cookie the UI sets after login, or an
``Authorization: Bearer`` token from ``POST /auth/token``) with access to the Airflow website, checked
by Airflow's auth manager: a request without one gets 401, an invalid token 403.
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse

URL_PREFIX = "/headroom"


def _authorized():
    """Airflow's own check: an authenticated user allowed to see the Airflow website."""
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view

    return requires_access_view(AccessView.WEBSITE)


def _reports() -> Path:
    from include.headroom.config import reports_dir

    return reports_dir()


def _service_names() -> set[str]:
    from headroom_provider.defaults import config

    return {s.name for s in config().services}


def _read(path: Path, what: str) -> str:
    if not path.is_file():
        raise HTTPException(status_code=404, detail=f"{what} not found at {path}: the capacity_report DAG has not written it yet")
    return path.read_text()


def _known(service: str) -> str:
    if service not in _service_names():
        raise HTTPException(status_code=404, detail=f"unknown service {service!r}; the catalog lists {sorted(_service_names())}")
    return service


def create_app() -> FastAPI:
    """The Headroom FastAPI app; every route sits behind :func:`_authorized`."""
    app = FastAPI(title="Headroom", description="Capacity and SLO report of the headroom fleet", dependencies=[Depends(_authorized())])

    @app.get("/", response_class=HTMLResponse, summary="The newest capacity and SLO report")
    def latest_report() -> HTMLResponse:
        return HTMLResponse(_read(_reports() / "latest.html", "the latest report"))

    @app.get("/latest.html", response_class=HTMLResponse, include_in_schema=False)
    def latest_report_file() -> HTMLResponse:
        return latest_report()

    @app.get("/services/{service}.html", response_class=HTMLResponse, summary="One service's drill-down page")
    def service_page(service: str) -> HTMLResponse:
        return HTMLResponse(_read(_reports() / "services" / f"{_known(service)}.html", f"the page of {service!r}"))

    @app.get("/api/latest.json", summary="The newest report's figures (the JSON twin)")
    def latest_figures() -> JSONResponse:
        return JSONResponse(json.loads(_read(_reports() / "latest.json", "the latest report's figures")))

    @app.get("/api/services/{service}", summary="One service's figures from the newest report")
    def service_figures(service: str) -> JSONResponse:
        figures = json.loads(_read(_reports() / "latest.json", "the latest report's figures"))
        name = _known(service)
        if name not in figures["services"]:
            raise HTTPException(status_code=404, detail=f"service {name!r} is not in the report of {figures['as_of']}")
        return JSONResponse(figures["services"][name])

    return app
