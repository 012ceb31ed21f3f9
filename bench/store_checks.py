"""Checks of what a store hands back, so that a damaged store is one line (``StoreError``), not a traceback.

SQLite finds a damaged page itself (``sqlite3.DatabaseError``, reported in one line by the CLI), but
bytes damaged inside a record can still parse, as NULLs or the wrong type. The fields every reader of
a run record needs are checked here before use.
"""

from __future__ import annotations

from bench.errors import StoreError

RUN_FIELDS = {"id": int, "started_at": (int, float), "suite": str, "machine_json": str}


def check_run(run) -> dict:
    """``run`` (a run record) with its required fields present and of the right type, else StoreError."""
    record = dict(run)
    for field, kind in RUN_FIELDS.items():
        value = record.get(field)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise StoreError(f"run {record.get('id')!r} of the store is damaged: field {field!r} is {value!r}; "
                             "the store is not usable as is")
    return record
