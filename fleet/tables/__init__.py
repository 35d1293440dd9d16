"""Every table of servicecast, importable as `fleet.tables.X`; Alembic reads `Base.metadata`."""

from fleet.tables.base import NAMING, Base, BigId, Json, UtcDateTime, utcnow
from fleet.tables.changes import ChangeCounter
from fleet.tables.events import MachineEvent
from fleet.tables.ground_truth import SimulationRunRecord
from fleet.tables.labels import Label
from fleet.tables.lifecycle import (
    ArchivedRange,
    ArchiveFile,
    ArchiveStore,
    ErasureNotice,
    ErasureReceipt,
    Rollup,
    RollupDirty,
)
from fleet.tables.machine_types import MachineTypeVersion
from fleet.tables.predictions import ModelVersion, Prediction, ScoreState
from fleet.tables.register import Customer, DataUseGrant, Machine, MachineCredential, Sensor, Site
from fleet.tables.sales import CatalogVersion, CrmOutcome, NotificationSubscription, subscription_address
from fleet.tables.sessions import ConsoleSession
from fleet.tables.sparkplug import SparkplugBirths, SparkplugCredential, SparkplugNode
from fleet.tables.telemetry import Quarantine, Telemetry
from fleet.tables.workflow import (
    UNNAMED_MODE,
    AccountAssignment,
    Alert,
    ApiKey,
    Offer,
    OutboxMessage,
    User,
    Watermark,
    WorkflowEvent,
    named_mode,
)

__all__ = [
    "named_mode",
    "subscription_address",
    "UNNAMED_MODE",
    "AccountAssignment",
    "Alert",
    "ApiKey",
    "ArchiveFile",
    "ArchivedRange",
    "ArchiveStore",
    "CatalogVersion",
    "ErasureNotice",
    "ErasureReceipt",
    "Rollup",
    "RollupDirty",
    "Offer",
    "OutboxMessage",
    "User",
    "Watermark",
    "WorkflowEvent",
    "NAMING",
    "Base",
    "BigId",
    "ChangeCounter",
    "ConsoleSession",
    "SparkplugCredential",
    "SparkplugNode",
    "SparkplugBirths",
    "CrmOutcome",
    "Customer",
    "DataUseGrant",
    "Json",
    "Label",
    "Machine",
    "MachineCredential",
    "MachineEvent",
    "MachineTypeVersion",
    "NotificationSubscription",
    "ModelVersion",
    "Prediction",
    "Quarantine",
    "ScoreState",
    "Sensor",
    "SimulationRunRecord",
    "Site",
    "Telemetry",
    "UtcDateTime",
    "utcnow",
]
