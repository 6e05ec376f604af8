"""The capacity and SLO report: figures from the store (``figures``), plots (``plots``), pages and JSON twin (``html``)."""
