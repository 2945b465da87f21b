"""Pure ASGI middleware: cheap, and safe for contextvars (no BaseHTTPMiddleware)."""
