"""The executor: runs a plan. It must never import ``fetchplan.planner``.

Library entry points (see :mod:`fetchplan.executor.run`)::

    result = execute_plan(plan_path, FetchOptions(...), reporter)   # -> FetchResult
    with open_execution(plan_path, options, reporter) as run:      # verified files as they land
        for verified in run:
            ...
    run.result                                                      # -> FetchResult

Modules: ``plancheck`` (semantic plan checks), ``retry`` and ``limits`` (immutable policies),
``protocol`` (pure HTTP resume/redirect rules), ``checkpoint`` (the journal), ``download``
(one artifact, returns only a verified file: its sources in order, then the tries),
``transfer`` (one try, returning an ``outcome``), ``verify`` (every check of content),
``scheduler`` (bounded pool, per-host cap), ``lock``, ``shard``, ``manifests`` (write and
merge), ``progress`` and ``reporters``, ``summary`` (result and ``--timings``).
"""

from fetchplan.executor.download import ArtifactFailed, Cancelled, Verified
from fetchplan.executor.limits import TransferLimits
from fetchplan.executor.lock import DestinationBusy
from fetchplan.executor.progress import NullReporter, Reporter, Snapshot
from fetchplan.executor.retry import RetryPolicy
from fetchplan.executor.run import Execution, FetchOptions, execute_plan, open_execution
from fetchplan.executor.summary import Failure, FetchResult

__all__ = [
    "ArtifactFailed",
    "Cancelled",
    "DestinationBusy",
    "Execution",
    "Failure",
    "FetchOptions",
    "FetchResult",
    "NullReporter",
    "Reporter",
    "RetryPolicy",
    "Snapshot",
    "TransferLimits",
    "Verified",
    "execute_plan",
    "open_execution",
]
