"""Every constructor argument of a public operator, sensor, trigger and hook has a ``:param:`` entry.

The entry may sit on the class itself or on one of its Ferry base classes (a subclass documents
what it adds; FerryTransferOperator documents what every transfer operator shares), never on an
Airflow class. Nothing here talks to a store: it reads signatures and docstrings.
"""

from __future__ import annotations

import inspect
import re

import pytest

from ferry_provider.hooks.gcs import FerryGCSHook
from ferry_provider.hooks.http import FerryHTTPHook
from ferry_provider.hooks.local import FerryLocalHook
from ferry_provider.hooks.s3 import FerryS3Hook
from ferry_provider.operators.bulk import FerryBulkPlanOperator, FerryBulkTransferOperator, FerryManifestMergeOperator
from ferry_provider.operators.copy import FerryCopyOperator
from ferry_provider.operators.download import FerryDownloadOperator
from ferry_provider.operators.transfer import FerryTransferOperator
from ferry_provider.operators.upload import FerryUploadOperator
from ferry_provider.sensors.artifact import FerryArtifactSensor
from ferry_provider.triggers.artifact import FerryArtifactTrigger

PUBLIC_CLASSES = [
    FerryTransferOperator,
    FerryDownloadOperator,
    FerryUploadOperator,
    FerryCopyOperator,
    FerryBulkTransferOperator,
    FerryBulkPlanOperator,
    FerryManifestMergeOperator,
    FerryArtifactSensor,
    FerryArtifactTrigger,
    FerryS3Hook,
    FerryGCSHook,
    FerryHTTPHook,
    FerryLocalHook,
]


def own_parameters(cls: type) -> list[str]:
    """The named parameters of ``cls.__init__``: not self, not ``*args`` or ``**kwargs``."""
    skipped = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    parameters = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in parameters if p.name != "self" and p.kind not in skipped]


def ferry_docstrings(cls: type) -> str:
    """The docstrings of ``cls`` and of its bases defined in Ferry (not Airflow's), joined."""
    ferry = [c for c in cls.__mro__ if c.__module__.startswith("ferry_provider.")]
    return "\n".join(c.__doc__ or "" for c in ferry)


def documented(cls: type) -> set[str]:
    return set(re.findall(r"^\s*:param\s+(\w+):", ferry_docstrings(cls), flags=re.MULTILINE))


@pytest.mark.parametrize("cls", PUBLIC_CLASSES, ids=lambda c: c.__name__)
def test_every_constructor_argument_has_a_param_entry(cls: type) -> None:
    parameters = own_parameters(cls)
    assert parameters, f"{cls.__name__}.__init__ names no parameter: this test would prove nothing"
    missing = [name for name in parameters if name not in documented(cls)]
    assert not missing, f"{cls.__name__}: no ':param <name>:' entry for {missing}"


def test_airflow_base_docstrings_do_not_count() -> None:
    """Only Ferry's classes are searched: Airflow's BaseOperator documents ``task_id`` and the
    like, which must not stand in for a missing entry of ours."""
    searched = [c for c in FerryDownloadOperator.__mro__ if c.__module__.startswith("ferry_provider.")]
    assert searched == [FerryDownloadOperator, FerryTransferOperator]


def test_every_public_class_of_the_modules_is_listed() -> None:
    """A class added to one of the modules without being added here would escape the check."""
    import ferry_provider.hooks.gcs
    import ferry_provider.hooks.http
    import ferry_provider.hooks.local
    import ferry_provider.hooks.s3
    import ferry_provider.operators.bulk
    import ferry_provider.operators.copy
    import ferry_provider.operators.download
    import ferry_provider.operators.transfer
    import ferry_provider.operators.upload
    import ferry_provider.sensors.artifact
    import ferry_provider.triggers.artifact

    modules = [
        ferry_provider.hooks.gcs,
        ferry_provider.hooks.http,
        ferry_provider.hooks.local,
        ferry_provider.hooks.s3,
        ferry_provider.operators.bulk,
        ferry_provider.operators.copy,
        ferry_provider.operators.download,
        ferry_provider.operators.transfer,
        ferry_provider.operators.upload,
        ferry_provider.sensors.artifact,
        ferry_provider.triggers.artifact,
    ]
    defined = {
        obj
        for module in modules
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and obj.__module__ == module.__name__ and not name.startswith("_")
    }
    assert defined == set(PUBLIC_CLASSES)
