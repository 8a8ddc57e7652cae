"""One controller per resource, mounted under ``/api/v1``."""
