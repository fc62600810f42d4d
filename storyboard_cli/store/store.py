"""Store: every part of the store as one object (the package docstring says why mixins)."""

from __future__ import annotations

from storyboard_cli.store.edits import Edits
from storyboard_cli.store.plans import Plans
from storyboard_cli.store.projects import Projects
from storyboard_cli.store.renders import Renders
from storyboard_cli.store.revisions import Revisions
from storyboard_cli.store.tasks import Tasks


class Store(Projects, Tasks, Plans, Renders, Revisions, Edits):
    """Typed access to the store. One instance per process; not shared across forks."""
