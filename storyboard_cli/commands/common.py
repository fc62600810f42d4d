"""What every command shares: --json, --config, --debug, and turning errors into exit codes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from storyboard_cli import output
from storyboard_cli.errors import EXIT_TASK_FAILED, ServiceUnavailable, StoryboardError

if TYPE_CHECKING:
    from storyboard_cli.config import Config
    from storyboard_cli.store import Store

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON on stdout, nothing else.")
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="STORYBOARD_CONFIG",
        help="Configuration file [default: ./storyboard.toml, then the user config dir].",
        show_default=False,
    ),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")]

F = TypeVar("F", bound=Callable[..., Any])


def _as_service_error(exc: Exception) -> StoryboardError | None:
    """Connection failures of the libraries we use, as exit code 3 with a plain message."""
    import redis.exceptions

    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return ServiceUnavailable(f"cannot reach Redis: {exc}")
    try:
        import httpx
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, httpx.TransportError):
        return ServiceUnavailable(f"cannot reach the GPU daemon: {exc}")
    return None


def command(fn: F) -> F:
    """Run a command body, turning expected failures into one line and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        json_out = bool(kwargs.get("json_out"))
        debug = bool(kwargs.get("debug"))
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except StoryboardError as exc:
            if debug:
                raise
            output.error(str(exc), json_out)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            output.error("interrupted", json_out)
            raise typer.Exit(130) from None
        except Exception as exc:
            if debug:
                raise
            mapped = _as_service_error(exc)
            if mapped is not None:
                output.error(str(mapped), json_out)
                raise typer.Exit(mapped.exit_code) from None
            output.error(
                f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)", json_out
            )
            raise typer.Exit(EXIT_TASK_FAILED) from None

    return wrapper  # type: ignore[return-value]


class Context:
    """Lazily loaded configuration and store for one command invocation."""

    def __init__(self, config_path: Path | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None
        self._store: Store | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            from storyboard_cli.config import load_config

            self._config = load_config(self.config_path)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            from storyboard_cli.store import Store

            self._store = Store(self.config.store_path)
        return self._store
