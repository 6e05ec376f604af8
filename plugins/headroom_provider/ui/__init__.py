"""The Headroom page inside the Airflow UI: a FastAPI app served by the API server, and its navigation entry."""
