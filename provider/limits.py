"""The job's declared sizes, as the ticket's signed ``limits``, bind the node: it reads no more rows and returns
no more values than the consumer declared (and the grant's quotas were checked against).

``planned_rows`` says, before any row is read, how many the operation will read where the node can tell
(statistics read every row of the mounted datasets; scoring reads one row per requested id); ``enforce`` checks
the rows actually read and the cells of the result before anything leaves. A ticket without limits (issued before
they existed) binds nothing here.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from common.vocab import ComputationKind
from privacy import fixedpoint, he
from provider.datasets import Dataset


class LimitExceeded(Exception):
    """The work asked for goes beyond the ticket's limits; the message says which and by how much."""


def planned_rows(operation: str, datasets: Sequence[Dataset], params: Mapping[str, Any]) -> int | None:
    """Return how many rows the operation will read, or None when only running it tells."""
    if operation == ComputationKind.HE_STATISTICS:
        return sum(dataset.rows for dataset in datasets)
    if operation == ComputationKind.HE_SCORING and isinstance(params, Mapping) and isinstance(params.get("ids"), list):
        return len(params["ids"])
    return None


def enforce(claims: Mapping[str, Any], rows: int | None, cells: int | None) -> None:
    """Raise ``LimitExceeded`` if ``rows`` read or the result's ``cells`` exceed the ticket's limits."""
    limits = claims.get("limits")
    if limits is None:
        return
    if rows is not None and rows > limits["rows"]:
        raise LimitExceeded(f"the job would read {rows} rows here, above the {limits['rows']} rows the job declared "
                            f"(its ticket's limit): declare the rows the job reads")
    if cells is not None and cells > limits["result_cells"]:
        raise LimitExceeded(f"the result would hold {cells} result cells, above the {limits['result_cells']} the "
                            f"job declared (its ticket's limit)")


def result_cells(operation: str, result: bytes) -> int:
    """Return how many values an encrypted result releases: its bundle's logical length, counted in statistics
    (each encoded as ``fixedpoint.LIMBS`` digits) for a statistics job."""
    length = he.Bundle.from_bytes(result).length
    return -(-length // fixedpoint.LIMBS) if operation == ComputationKind.HE_STATISTICS else length
