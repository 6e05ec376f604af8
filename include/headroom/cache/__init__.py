"""Cache warming: access logs, hot-key ranking and warm plans with adaptive TTLs, the Redis and CDN warmers."""

__all__ = [
    "access_log",
    "cdn",
    "origin",
    "redis_warmer",
    "settings",
    "warming",
]
