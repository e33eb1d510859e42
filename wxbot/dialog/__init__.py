"""The conversation engine. Nothing in this package knows about HTTP or XML."""
