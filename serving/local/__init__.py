"""Local deployer: replica processes per revision, scaled by the autoscaler, behind the
router; the foreground runner behind ``hyperflow serve run``."""

from __future__ import annotations

from serving.local.deployer import RevisionDeployer
from serving.local.deployment import LocalDeployment, RevisionStatus, replica_argv
from serving.local.replica import ReplicaProcess, ReplicaState
from serving.local.revisions import RevisionSpec, autoscaler_config, revision_specs

__all__ = [
    "LocalDeployment",
    "ReplicaProcess",
    "ReplicaState",
    "RevisionDeployer",
    "RevisionSpec",
    "RevisionStatus",
    "autoscaler_config",
    "replica_argv",
    "revision_specs",
]
