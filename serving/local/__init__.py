"""Local deployer: replica processes per revision, scaled by the autoscaler, behind the
router; the foreground runner behind ``hyperflow serve run``."""

from __future__ import annotations

from serving.local.deployer import RevisionDeployer
from serving.local.deployment import LocalDeployment, RevisionStatus, replica_argv
from serving.local.replica import Listener, ReplicaProcess, ReplicaState, parse_port_range
from serving.local.revisions import RevisionSpec, autoscaler_config, revision_specs
from serving.local.usage import ProcessUsage, UsageSampler

__all__ = [
    "Listener",
    "LocalDeployment",
    "ProcessUsage",
    "ReplicaProcess",
    "ReplicaState",
    "RevisionDeployer",
    "RevisionSpec",
    "RevisionStatus",
    "UsageSampler",
    "autoscaler_config",
    "parse_port_range",
    "replica_argv",
    "revision_specs",
]
