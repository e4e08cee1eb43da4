"""Local deployer: replica processes per revision, scaled by the autoscaler, behind the
router; the foreground runner behind ``hyperflow serve run``."""

from __future__ import annotations

from serving.local.deployer import DeployEvent, RevisionDeployer
from serving.local.deployment import LocalDeployment, Revision, RevisionStatus, replica_argv
from serving.local.replica import Listener, ReplicaProcess, ReplicaState, parse_port_range
from serving.local.revisions import (
    RevisionSpec,
    autoscaler_config,
    revision_spec,
    revision_specs,
)
from serving.local.usage import ProcessUsage, UsageSampler

__all__ = [
    "DeployEvent",
    "Listener",
    "LocalDeployment",
    "ProcessUsage",
    "ReplicaProcess",
    "ReplicaState",
    "Revision",
    "RevisionDeployer",
    "RevisionSpec",
    "RevisionStatus",
    "UsageSampler",
    "autoscaler_config",
    "parse_port_range",
    "replica_argv",
    "revision_spec",
    "revision_specs",
]
