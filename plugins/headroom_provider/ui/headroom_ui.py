"""The Airflow plugin that adds the "Headroom" entry to the Airflow UI and mounts its FastAPI app on the API server."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from headroom_provider.ui.report_app import URL_PREFIX, create_app


class HeadroomUIPlugin(AirflowPlugin):
    """``/headroom`` on the API server (behind Airflow's login) and a "Headroom" entry in the UI's navigation."""

    name = "headroom_ui"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Headroom"}]
    external_views = [{
        "name": "Headroom",
        "href": f"{URL_PREFIX}/",
        "destination": "nav",
        "url_route": "headroom",
        "category": "browse",
    }]
