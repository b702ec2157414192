"""Hello World HTTP service."""
