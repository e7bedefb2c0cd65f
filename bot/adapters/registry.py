"""The adapters `qabot run NAME` can start, and the one code path that starts any of them.

A new platform is a package under bot/adapters/ with an Adapter subclass (bot/adapters/base.py),
plus one line in ADAPTERS. Entries are import paths, so `qabot run discord` never imports Slack's SDK.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from bot.config import ConfigError, Settings
from bot.core.errors import IndexProblem

if TYPE_CHECKING:  # imported when an adapter is looked up: `qabot --help` stays fast
    from bot.adapters.base import Adapter, AdapterSettings

log = logging.getLogger(__name__)

ADAPTERS: dict[str, str] = {
    "terminal": "bot.adapters.terminal:TerminalAdapter",
    "slack": "bot.adapters.slack:SlackAdapter",
    "discord": "bot.adapters.discord:DiscordAdapter",
}


class UnknownAdapterError(ConfigError):
    """No adapter of that name is registered."""


class AdapterOptionError(ConfigError):
    """An option the adapter's settings do not have (e.g. --http for Discord)."""

    def __init__(self, adapter: str, options: list[str]):
        super().__init__(f"{adapter} does not take {', '.join(options)}")
        self.adapter = adapter
        self.options = options


def adapter_class(name: str) -> type[Adapter]:
    """The Adapter class registered as `name` (imported only now)."""
    from bot.adapters.base import Adapter

    target = ADAPTERS.get(name)
    if target is None:
        raise UnknownAdapterError(f"unknown front end {name!r}: use one of {', '.join(ADAPTERS)}.")
    module_name, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise TypeError(f"{target} is not an Adapter")
    return cls


def adapter_settings(cls: type[Adapter], **options: Any) -> AdapterSettings:
    """The adapter's settings from the environment and `.env`, with `options` (None: not given) on top,
    checked: a missing or malformed secret raises ConfigError naming it and where to get it."""
    given = {key: value for key, value in options.items() if value is not None}
    unknown = sorted(set(given) - set(cls.settings_class.model_fields))
    if unknown:
        raise AdapterOptionError(cls.name, unknown)
    settings = cls.settings_class.load(**given)
    settings.check()
    return settings


def run_adapter(name: str, settings: Settings, **options: Any) -> None:
    """`qabot run NAME`: settings checked first (nothing built, nothing connected when one is missing),
    then the service, its index loaded (`warm_up`), then the adapter runs until stopped."""
    from bot.conversation.factory import build_service  # pulls in the retrieval stack
    from bot.ops.server import OpsServer, Probes

    cls = adapter_class(name)
    own_settings = adapter_settings(cls, **options)
    service = build_service(settings)
    ops: OpsServer | None = None
    try:
        try:
            log.info("serving index %s", service.warm_up())
        except IndexProblem as err:
            if cls.needs_index:
                raise
            # keep running: questions get the fix as their answer, and an admin can build the index from chat
            log.warning("no usable index yet: %s", err)
        # follow index versions published by other processes; with Redis, heartbeats and the reload broadcast
        service.shared.start(service.engine)
        if settings.metrics_port is not None:
            try:
                ops = OpsServer(Probes(service), host=settings.metrics_host, port=settings.metrics_port).start()
            except OSError as err:
                raise ConfigError(
                    f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} ({err.strerror or err}): "
                    "set QABOT_METRICS_PORT to a free port"
                ) from None
        cls(service, own_settings).run()
    finally:
        if ops is not None:
            ops.stop()
        service.shared.close()
        service.feedback.close()
