"""CLI commands, a module per group; each exposes register(app). Commands stay thin."""
