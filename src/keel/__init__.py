"""keel: a production-ready, multi-tenant backend service."""

__version__ = "0.1.0"
