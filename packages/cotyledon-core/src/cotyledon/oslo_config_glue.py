"""Options and reload hooks that tie a ``ServiceManager`` to oslo.config.

The API is that of cotyledon 2.x::

    conf = cfg.ConfigOpts()
    conf(args, project="myproject")
    manager = cotyledon.ServiceManager()
    oslo_config_glue.setup(manager, conf)  # register_opts(conf), then link()
    manager.add(MyService, workers=4, args=(conf,))
    manager.run()

``link`` reads ``graceful_shutdown_timeout`` into the manager and installs
two hooks. On SIGHUP, the master reloads (``reload_method="reload"``) or
mutates (``"mutate"``) its configuration files, then sets the manager's
timeout from the new value. In each worker, before the service's own
``reload()`` runs, the worker's copy of the configuration is reloaded the
same way, so ``reload()`` reads the new values. A worker started after a
reload starts with the master's values. A configuration file that fails to
parse is logged with its name, and the previous values stay.

With ``log_options`` true, the master and each worker log every option at
DEBUG level when they start and after each reload.

Needs oslo.config: install ``cotyledon-core[oslo]``. ``import cotyledon``
never imports this module.
"""

from __future__ import annotations

import copy
import functools
import logging
import signal
from collections.abc import Callable
from typing import Any
from typing import Final
from typing import Literal
from typing import TypeAlias

from cotyledon.core import record

try:
    from oslo_config import cfg
except ImportError as exc:
    raise ImportError(
        "cotyledon.oslo_config_glue needs oslo.config, which cannot be imported "
        f"({exc}): install it with the extra, pip install 'cotyledon-core[oslo]'",
        name=exc.name,
    ) from exc

from cotyledon._errors import InvalidArgumentError
from cotyledon._manager import ServiceManager
from cotyledon.core import ServiceId
from cotyledon.core import WorkerId
from cotyledon.runtime import CancelReload

__all__ = [
    "ReloadMethod",
    "link",
    "list_opts",
    "register_opts",
    "service_opts",
    "setup",
    "unregister_opts",
]

LOG = logging.getLogger(__name__)

ReloadMethod: TypeAlias = Literal["reload", "mutate"]
"""How a reload reads the files. ``reload`` calls ``conf.reload_config_files()``,
and ``mutate`` calls ``conf.mutate_config_files()``, which changes only the
mutable options."""

RELOAD_METHODS: Final[tuple[ReloadMethod, ...]] = ("reload", "mutate")

service_opts: Final[list[cfg.Opt]] = [
    cfg.BoolOpt(
        "log_options",
        default=True,
        mutable=True,
        help="Log the value of every registered option, at DEBUG level, when "
        "the master and each worker start and after each reload.",
    ),
    cfg.IntOpt(
        "graceful_shutdown_timeout",
        default=60,
        mutable=True,
        help="Seconds that a worker may take to stop gracefully before the "
        "master kills it. 0 means wait forever.",
    ),
]
"""The options of the manager, registered in the DEFAULT group."""


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register ``graceful_shutdown_timeout`` and ``log_options`` in ``conf``."""
    conf.register_opts(service_opts)


def unregister_opts(conf: cfg.ConfigOpts) -> None:
    """Unregister the options that ``register_opts`` registered.

    oslo.config allows it only before ``conf`` has parsed its arguments.
    """
    conf.unregister_opts(service_opts)


def link(
    manager: ServiceManager,
    conf: cfg.ConfigOpts,
    reload_method: ReloadMethod = "reload",
) -> None:
    """Configure ``manager`` from ``conf`` and keep it in step on reload.

    ``conf`` must have the options of ``register_opts`` (or options of the
    same names, as oslo.service registers) and must have parsed its
    arguments. Sets the manager's graceful shutdown timeout now, and
    registers the hooks that reload ``conf`` in the master and in each
    worker on SIGHUP (see the module's documentation).

    Raises ``InvalidArgumentError`` if ``reload_method`` is not
    ``"reload"`` or ``"mutate"``.
    """
    _check_reload_method(reload_method)
    manager._graceful_shutdown_timeout = conf.graceful_shutdown_timeout
    _log_options(conf, "master")
    if not hasattr(signal, "SIGHUP"):
        # Without SIGHUP there is no reload, so the hooks would do nothing but
        # make the spawn start method pickle the configuration.
        return
    manager.register_hooks(
        on_reload=functools.partial(_reload_master, manager, conf, reload_method),
        on_new_worker=_WorkerHook(conf, reload_method),
    )


def setup(
    manager: ServiceManager,
    conf: cfg.ConfigOpts,
    reload_method: ReloadMethod = "reload",
) -> None:
    """Register the options in ``conf`` (``register_opts``), then ``link``."""
    _check_reload_method(reload_method)
    register_opts(conf)
    link(manager, conf, reload_method)


def list_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    """Return the options for oslo-config-generator (namespace ``cotyledon``)."""
    return [(None, copy.deepcopy(service_opts))]


def _check_reload_method(reload_method: object) -> None:
    if reload_method not in RELOAD_METHODS:
        raise InvalidArgumentError(
            f"reload_method must be 'reload' or 'mutate', got {reload_method!r}"
        )


def _reload_master(manager: ServiceManager, conf: cfg.ConfigOpts, method: ReloadMethod) -> None:
    """Reload the master's configuration and apply it to the manager (on_reload hook)."""
    if not _reload_files(conf, method, "master"):
        # The workers would reload files that the master could not read:
        # leave them running with the values they have.
        raise CancelReload("the configuration files could not be reloaded")
    old = manager._graceful_shutdown_timeout
    failure = None
    try:
        manager._graceful_shutdown_timeout = conf.graceful_shutdown_timeout
    except (cfg.Error, ValueError, TypeError) as exc:
        failure = f"{type(exc).__name__}: {exc}"
    if failure is not None:
        LOG.error(
            "The reloaded graceful_shutdown_timeout is not valid (%s); the manager keeps %s s",
            failure,
            old,
        )
    _log_options(conf, "master")


@record(eq=False)
class _WorkerHook:
    """The on_new_worker hook: reload the worker's copy of the configuration
    before the service's own ``reload()``.

    A module-level class, so that the spawn and forkserver start methods can
    pickle it along with ``conf``.

    NOTE: oslo.config (10.7) cannot reload a ``ConfigOpts`` that was
    unpickled, because the copy has no argument parser. Workers started by
    spawn or forkserver log that error on reload and keep their values.
    """

    conf: cfg.ConfigOpts
    reload_method: ReloadMethod

    def __call__(self, service_id: ServiceId, worker_id: WorkerId, service: Any) -> None:
        name = getattr(service, "name", None) or type(service).__name__
        where = f"worker {name}({worker_id})"
        service_reload: Callable[[], None] = service.reload
        reload = _ReloadFirst(self.conf, self.reload_method, where, service_reload)
        failure = None
        try:
            # An attribute of the instance shadows the class's method, so the
            # worker calls the wrapper while the manager, which looks at the
            # class, keeps the service's reload policy.
            service.reload = reload
        except (AttributeError, TypeError) as exc:
            failure = f"{type(exc).__name__}: {exc}"
        if failure is not None:
            LOG.warning(
                "Cannot wrap reload() of %r (%s): %s will not reload its configuration "
                "before reload()",
                service,
                failure,
                where,
            )
        _log_options(self.conf, where)


@record(eq=False)
class _ReloadFirst:
    """Reload the configuration files, then call the service's ``reload()``."""

    conf: cfg.ConfigOpts
    reload_method: ReloadMethod
    where: str
    service_reload: Callable[[], None]

    def __call__(self) -> None:
        if _reload_files(self.conf, self.reload_method, self.where):
            _log_options(self.conf, self.where)
        # Called even when the files failed to load, because the service may
        # reload more than its options, and its options still have valid values.
        self.service_reload()


def _reload_files(conf: cfg.ConfigOpts, method: ReloadMethod, where: str) -> bool:
    """Reload or mutate the configuration files, and return whether it worked.

    Catches every exception and SystemExit, so a bad file never ends the
    master or a worker. A failed reload is logged and ``conf`` keeps its values.
    """
    failure = None
    try:
        if method == "mutate":
            conf.mutate_config_files()
        elif not conf.reload_config_files():
            # oslo.config has logged the cause, with the file's name, and
            # kept the previous values.
            failure = "oslo.config could not load them, see its warning"
    except cfg.Error as exc:
        failure = str(exc)
    except SystemExit as exc:
        # oslo.config's argument parser raises SystemExit on arguments that it
        # rejects, which would otherwise end the master or the worker.
        failure = f"oslo.config exited with status {exc.code}"
    except Exception:
        LOG.exception(
            "Reloading the configuration files %s failed in the %s; the previous values stay",
            _config_files(conf),
            where,
        )
        return False
    if failure is None:
        return True
    LOG.error(
        "Reloading the configuration files %s failed in the %s: %s; the previous values stay",
        _config_files(conf),
        where,
        failure,
    )
    return False


def _config_files(conf: cfg.ConfigOpts) -> list[str]:
    """Return the configuration files and folders that ``conf`` reads, for logs."""
    found: list[str] = []
    for name in ("config_file", "config_dir"):
        try:
            value = getattr(conf, name)
        except (cfg.Error, AttributeError):
            continue
        if isinstance(value, str):
            found.append(value)
        elif value:
            found.extend(str(item) for item in value)
    return found


def _log_options(conf: cfg.ConfigOpts, where: str) -> None:
    failure = None
    try:
        if not conf.log_options:
            return
        LOG.debug("Configuration options of the %s:", where)
        conf.log_opt_values(LOG, logging.DEBUG)
    except (cfg.Error, ValueError) as exc:
        failure = f"{type(exc).__name__}: {exc}"
    if failure is not None:
        LOG.error("Cannot log the configuration options of the %s: %s", where, failure)
