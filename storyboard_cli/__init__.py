"""storyboard: the host side — CLI, store, queue jobs, daemon client, local stack."""

__version__ = "0.1.0"
