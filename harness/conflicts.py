"""Which race points can conflict: the accesses a point stands for, and whether two of them race.

The scheduler spends its switches where the order matters: two actors' next steps conflict when
they touch the same resource and one of them writes it. :func:`access` reads a point's context:

- ``db.execute`` / ``db.executed``: a ``SELECT`` reads its tables (a ``FOR UPDATE`` also locks,
  that is writes, its first); an ``INSERT``, ``UPDATE``, ``DELETE`` or ``COPY … FROM`` writes its table and reads
  the others. Inside a transaction a write is not visible to other readers yet (neither
  PostgreSQL nor SQLite reads uncommitted rows): it races with other writes of the table, not
  with reads. In autocommit it also publishes the table;
- ``db.commit``: publishes the tables the transaction wrote, so it races with a read of any of
  them — "a commit against a read of what it commits" — and with their writers;
- ``rq.enqueue``, ``rq.dequeue``, ``rq.job.start`` / ``end``: write the job (``job:<id>``) and its
  queue (``queue:<name>``);
- any other point (the app's own): writes one resource per context item whose value is a number
  or a string (``import_id=7`` → ``import_id=7``); with none, it conflicts with everything.

Points that touch nothing (a rollback, ``db.on_commit``, savepoints, ``BEGIN``, an actor's start)
race with nothing: the scheduler lets them pass without a decision.
"""
from __future__ import annotations

import dataclasses

__all__ = ["Access", "access", "conflict", "union", "suffixes"]

_SILENT = frozenset({"BEGIN", "SAVEPOINT", "RELEASE", "ROLLBACK", "COMMIT", "SET", "SHOW"})
_WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE", "COPY"})


@dataclasses.dataclass(frozen=True)
class Access:
    """What a point reads, writes (or locks), and publishes to readers; ``everything`` for an unknown effect."""

    reads: frozenset = frozenset()
    writes: frozenset = frozenset()
    publishes: frozenset = frozenset()
    everything: bool = False


NOTHING = Access()
EVERYTHING = Access(everything=True)


def access(point: str, context: dict) -> Access:
    """Return the resources the point ``point`` with ``context`` reads and writes."""
    if point in ("db.execute", "db.executed"):
        verb, tables = context.get("verb", ""), frozenset(context.get("tables") or ())
        if verb in _SILENT or not tables:
            return NOTHING
        table = frozenset({context.get("table")})
        if verb in _WRITES:
            return Access(reads=tables, writes=table, publishes=table if context.get("autocommit") else frozenset())
        if context.get("lock"):
            return Access(reads=tables, writes=table)
        return Access(reads=tables)
    if point == "db.commit":
        tables = frozenset(context.get("tables") or ())
        return Access(writes=tables, publishes=tables)
    if point in ("db.rollback", "db.on_commit", "rq.deferred", "(start)"):
        return NOTHING
    if point.startswith("rq."):
        resources = {f"job:{context.get('job_id')}"} | ({f"queue:{context['queue']}"} if context.get("queue") else set())
        return Access(writes=frozenset(resources))
    keys = frozenset(f"{key}={value}" for key, value in context.items()
                     if isinstance(value, (int, str)) and not isinstance(value, bool))
    return Access(writes=keys) if keys else EVERYTHING


def conflict(a: Access, b: Access) -> bool:
    """Return whether the two accesses race: both write one resource, or one publishes what the other reads."""
    if a == NOTHING or b == NOTHING:
        return False
    if a.everything or b.everything:
        return True
    return bool(a.writes & b.writes or a.publishes & b.reads or b.publishes & a.reads)


def union(accesses) -> Access:
    """Return one Access that touches what all of ``accesses`` touch."""
    reads, writes, publishes, everything = set(), set(), set(), False
    for a in accesses:
        reads |= a.reads
        writes |= a.writes
        publishes |= a.publishes
        everything = everything or a.everything
    return Access(frozenset(reads), frozenset(writes), frozenset(publishes), everything)


def suffixes(accesses) -> list:
    """Return, for each position k of an actor's steps, the union of what its steps from k on touch."""
    result, acc = [NOTHING] * (len(accesses) + 1), NOTHING
    for k in range(len(accesses) - 1, -1, -1):
        acc = union((accesses[k], acc))
        result[k] = acc
    return result
