"""headroom's Airflow layer, shaped like a provider: hooks own connections, operators call ``include.headroom``."""
