"""Enterprise connectors (SPEC section 7): the sync engine, quota and resilience, and the concrete connectors."""

__all__ = [
    "base",
    "engine",
    "files",
    "http",
    "hubspot",
    "odata",
    "registry",
    "resilience",
    "salesforce",
    "servicenow",
    "settings",
]
