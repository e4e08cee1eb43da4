"""The control plane, composed: one store engine, the event stream, the trial slots, the
experiment controllers, the inference services' deployer and the handlers on top. The
API app, the CLI's in-process commands (tokens) and tests build it through :func:`build`.

A resource kind plugs in here as one more manager + handler object, and in
:mod:`hyperflow.api.app` as one more router.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from hyperflow.gate import TokenGate, router_authorizer
from hyperflow.handlers.analysis import AnalysisHandlers
from hyperflow.handlers.auth import Tokens
from hyperflow.handlers.console import ServiceConsole
from hyperflow.handlers.deploy import DeployBestHandlers
from hyperflow.handlers.events import EventBus, EventHandlers
from hyperflow.handlers.experiments import ExperimentHandlers
from hyperflow.handlers.inferenceservices import InferenceServiceHandlers
from hyperflow.manager import ExperimentManager
from hyperflow.metrics import ServerMetrics
from hyperflow.services import ServiceManager
from hyperflow.settings import ServerSettings
from hyperflow.store.schema import upgrade_store
from hyperflow.store.services import ServiceStore
from hyperflow.store.tokens import TokenStore
from tuner.scheduling import FairTrialQueue
from tuner.store import Store, create_store_engine

log = logging.getLogger(__name__)


@dataclass
class ControlPlane:
    settings: ServerSettings
    store: Store
    events: EventBus
    slots: FairTrialQueue
    manager: ExperimentManager
    tokens: Tokens
    experiments: ExperimentHandlers
    event_handlers: EventHandlers
    metrics: ServerMetrics
    services: ServiceManager
    inferenceservices: InferenceServiceHandlers
    deploy: DeployBestHandlers
    # Read models of the web UI (trial columns, curves, importance, contour).
    analysis: AnalysisHandlers
    _ready: threading.Event = field(default_factory=threading.Event)
    _stopping: threading.Event = field(default_factory=threading.Event)
    # Pipeline runs (hyperflow.pipelineruns / hyperflow.handlers.pipelineruns).
    pipeline_runs: Any = None
    pipeline_manager: Any = None
    # The UI's view of inference services (router metrics over time, "try it").
    console: Any = None

    @property
    def router(self) -> Any:
        """The serving router (serving.router.Router) on --serving-port."""
        return self.services.router

    def start(self) -> None:
        """Bind the serving port and run every stored inference service, resume the
        experiments this server owns; then the server is ready. (A serving port that
        cannot be bound fails the start before any experiment resumes.)"""
        self.services.start()
        self.manager.resume_all()
        if self.pipeline_manager is not None:
            self.pipeline_manager.resume_all()
        self._ready.set()
        # Replicas on one PostgreSQL store: one takes over the experiments of another
        # that died, once its claim has lapsed (checked a few times per lease).
        threading.Thread(target=self._take_over, name="take-over", daemon=True).start()

    def _take_over(self) -> None:
        interval = max(1.0, self.store.claim_lease / 3)
        while not self._stopping.wait(interval):
            try:
                self.manager.take_over_orphans()
            except Exception:  # the store unreachable for a moment: next time
                log.warning("looking for experiments to take over failed", exc_info=True)

    def ready(self) -> bool:
        return self._ready.is_set()

    def close(self) -> None:
        """Detach the controllers (trials keep running; the next start adopts them) and
        stop the inference services' replicas (the next start runs them again)."""
        self._ready.clear()
        self._stopping.set()
        if self.console is not None:
            self.console.close()
        self.services.shutdown()
        self.manager.shutdown()
        if self.pipeline_manager is not None:
            self.pipeline_manager.shutdown()
        self.store.close()


def build(settings: ServerSettings) -> ControlPlane:
    settings.ensure_home()
    engine = create_store_engine(settings.store_url)
    upgrade_store(engine)
    store = Store(engine=engine)
    events = EventBus()
    slots = FairTrialQueue(settings.max_running_trials)
    holder: list[ServerMetrics] = []
    manager = ExperimentManager(
        store,
        settings,
        events=events,
        slots=slots,
        push_base_url=settings.trial_url,
        track=settings.track,
        observe_suggest=lambda s: holder[0].suggestion_seconds.observe(s) if holder else None,
    )
    ready = threading.Event()
    metrics = ServerMetrics(store, slots, ready.is_set)
    holder.append(metrics)

    def run_id_lookup(experiment, uid, trial):
        from tuner.tracking.lookup import trial_run_id

        return trial_run_id(settings.tracking_uri, experiment, uid, trial)

    experiments = ExperimentHandlers(
        store, manager, events, settings, run_id_lookup=run_id_lookup if settings.track else None
    )
    tokens = Tokens(TokenStore(engine), loopback=settings.loopback)
    pipeline_runs, pipeline_manager = _pipeline_handlers(engine, settings, events)
    service_store = ServiceStore(engine)
    services = ServiceManager(
        service_store,
        settings,
        events,
        gate=None if settings.loopback else (lambda app: TokenGate(app, tokens)),
        # On loopback too, in the router's own server: once tokens exist, another local
        # user may not call a namespace's models (without tokens every request passes).
        authorize=router_authorizer(tokens) if settings.loopback else None,
    )
    inferenceservices = InferenceServiceHandlers(service_store, services, events)
    register = None
    if settings.track:
        from tuner.tracking.registry import register_model_version

        register = functools.partial(register_model_version, settings.tracking_uri)
    plane = ControlPlane(
        settings,
        store,
        events,
        slots,
        manager,
        tokens,
        experiments,
        EventHandlers(events),
        metrics,
        services,
        inferenceservices,
        DeployBestHandlers(experiments, inferenceservices, register),
        AnalysisHandlers(store, experiments, events),
        _ready=ready,
        pipeline_runs=pipeline_runs,
        pipeline_manager=pipeline_manager,
    )
    plane.console = ServiceConsole(plane)
    return plane


def _pipeline_handlers(engine: Any, settings: ServerSettings, events: EventBus) -> Any:
    from hyperflow.handlers.pipelineruns import PipelineRunHandlers
    from hyperflow.pipelineruns import PipelineRunManager
    from pipelines.store import PipelineStore

    store = PipelineStore(engine=engine)
    manager = PipelineRunManager(store, settings, events)
    return PipelineRunHandlers(store, manager, events), manager


def token_handlers(settings: ServerSettings) -> tuple[Tokens, Store]:
    """Just the token handlers, for ``hyperflow token ...`` (no controllers started)."""
    settings.ensure_home()
    engine = create_store_engine(settings.store_url)
    upgrade_store(engine)
    return Tokens(TokenStore(engine), loopback=settings.loopback), Store(engine=engine)
