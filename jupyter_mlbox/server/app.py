"""``MlboxApp``: the jupyter_server extension behind the MLBox panel."""
from __future__ import annotations

import threading
import time

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Instance, List, Type, Unicode

from .jobs import JobManager


class MlboxApp(ExtensionApp):
    """REST API under ``/mlbox/api/``: requirements, Dockerfiles, builds, runs, exports, images.

    Option defaults come from ``c.MlboxDefaults`` (``jupyter_mlbox_config.{py,json}`` on the
    Jupyter config path, or the server's own config), as for the CLI and the magics.
    """

    name = "jupyter_mlbox"
    load_other_extensions = True

    job_manager_class = Type(
        default_value=JobManager, klass=JobManager, config=True,
        help="The class that runs builds, runs and exports (a JobManager subclass).")
    docker_host = Unicode(
        None, allow_none=True, config=True,
        help="The Docker daemon to use, as DOCKER_HOST would name it (unix:///…, tcp://…, "
             "ssh://…). Default: DOCKER_HOST, else the local socket.")
    base_image = Unicode(
        None, allow_none=True, config=True,
        help="Base image of built images; overrides c.MlboxDefaults.base_image. Default: "
             "python:<the server's major.minor>-slim.")
    allowed_hosts = List(
        Unicode(), config=True,
        help="Docker daemons (URLs, e.g. ssh://gpu-box) a request may name in options.host, "
             "besides the server's own and the docker contexts of the user it runs as "
             "(`docker context ls`). A request naming any other is refused: the server "
             "connects only where its owner said it may.")
    gpu_probe_seconds = Float(
        300.0, config=True,
        help="How long GET /mlbox/api/status may reuse its last GPU probe (a probe starts a "
             "short-lived container).")

    job_manager = Instance(JobManager, allow_none=True)

    def initialize_settings(self) -> None:
        from ..config import MlboxDefaults, load_defaults
        from ..errors import OptionError

        self.job_manager = self.job_manager_class(parent=self, log=self.log)
        self._gpu_cache: dict[str, tuple[float, bool]] = {}
        self._gpu_lock = threading.Lock()
        self._defaults_error: str | None = None
        try:
            self.defaults = load_defaults(config=self.config)
        except OptionError as err:  # the server still starts; jobs say what is wrong
            self.log.error("mlbox: %s", err)
            self.defaults, self._defaults_error = MlboxDefaults(), str(err)
        if self.base_image:
            self.defaults.base_image = self.base_image
        self.settings["mlbox"] = self
        self._reap_orphans()

    def _reap_orphans(self) -> None:
        """Containers of runs whose process is gone (core/orphans.py), off the event loop."""
        from ..core.orphans import reap_quietly

        threading.Thread(target=reap_quietly, args=(self.engine,), name="mlbox-reaper",
                         daemon=True).start()

    def initialize_handlers(self) -> None:
        from .handlers import default_handlers

        self.handlers.extend(default_handlers)

    async def stop_extension(self) -> None:
        if self.job_manager is not None:
            self.job_manager.shutdown()

    # --- what the handlers ask for (called in worker threads) ---------------------------------

    def engine(self, host: str | None = None):
        """A connection to ``host`` (one of :meth:`hosts`, checked by the handler), else the
        configured daemon (DaemonUnavailableError when none answers)."""
        from ..core.engine import connect

        return connect(base_url=host or self.docker_host or self.defaults.host or None)

    def hosts(self) -> list[str]:
        """What a request may name as its host: the docker contexts of the server's user and
        ``allowed_hosts`` (the server's own daemon is the default, named by no host)."""
        from ..core.docker_endpoint import context_names

        return [*context_names(), *(h for h in self.allowed_hosts if h)]

    def check_host(self, host) -> None:
        from ..errors import OptionError

        if host in (None, ""):
            return
        if not isinstance(host, str) or host not in self.hosts():
            raise OptionError(
                f"host {host!r} is not one this server may use: name a docker context of "
                f"the server's user (`docker context ls`) or one of c.MlboxApp.allowed_hosts "
                f"(now: {', '.join(self.hosts()) or 'none'})")

    def resolve_options(self, values: dict | None = None):
        """``(BuildOptions, RunOptions)`` of a request's ``options`` over the defaults."""
        from ..core.options import resolve_options
        from ..errors import MlboxError

        if self._defaults_error:
            raise MlboxError(self._defaults_error)
        return resolve_options(values or {}, self.defaults)

    def effective_base_image(self) -> str:
        from ..core.dockerfile import default_base_image

        return self.defaults.base_image or default_base_image()

    def gpu_support(self, engine, probe_image: str | None = None) -> bool:
        """The GPU probe, cached for ``gpu_probe_seconds`` per daemon."""
        with self._gpu_lock:
            cached = self._gpu_cache.get(engine.host)
            if cached and time.monotonic() - cached[0] < self.gpu_probe_seconds:
                return cached[1]
        value = engine.gpu_support(probe_image or self.effective_base_image())
        with self._gpu_lock:
            self._gpu_cache[engine.host] = (time.monotonic(), value)
        return value
