"""Cluster coordination on etcd: node lease, station ownership, leader election, owner lookup.

Knows nothing of OCPP or Postgres; the CSMS programs against ``Coordinator``.
"""

from cluster.contract import Claim, Coordinator, EpochSource, NodeInfo, NoEpochs, Owner
from cluster.errors import (
    ClaimSuperseded,
    EtcdCompacted,
    EtcdError,
    EtcdLeaseNotFound,
    EtcdUnavailable,
)
from cluster.etcd_client import EtcdClient
from cluster.etcd_coordinator import EtcdCoordinator
from cluster.leader_jobs import LeaderJobRunner, every
from cluster.observer import ClusterObserver, NullObserver
from cluster.rebalance import ShedOrder, plan_shedding, still_landing
from cluster.results import KeyValue, WatchEvent
from cluster.single_node import SingleNodeCoordinator
from cluster.singletons import LeasedSingletons
from cluster.txn import Compare, Op

__all__ = [
    "Claim",
    "ClaimSuperseded",
    "ClusterObserver",
    "Compare",
    "Coordinator",
    "EpochSource",
    "EtcdClient",
    "EtcdCompacted",
    "EtcdCoordinator",
    "EtcdError",
    "EtcdLeaseNotFound",
    "EtcdUnavailable",
    "KeyValue",
    "LeaderJobRunner",
    "LeasedSingletons",
    "NoEpochs",
    "NodeInfo",
    "NullObserver",
    "Op",
    "Owner",
    "ShedOrder",
    "SingleNodeCoordinator",
    "WatchEvent",
    "every",
    "plan_shedding",
    "still_landing",
]
