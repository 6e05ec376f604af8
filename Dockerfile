# Astro Runtime 3.3-8 is Apache Airflow 3.3.2, the version pinned in requirements.txt.
# The image's ONBUILD steps install packages.txt and requirements.txt and copy the
# project (dags/, plugins/, include/) to /usr/local/airflow, which is on sys.path,
# so `include.headroom` and `headroom_provider` import as they do locally.
FROM astrocrpublic.azurecr.io/runtime:3.3-8

ENV GX_ANALYTICS_ENABLED=False \
    HEADROOM_DATA_DIR=/usr/local/airflow/data \
    HEADROOM_REPORTS_DIR=/usr/local/airflow/reports
