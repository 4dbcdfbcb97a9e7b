"""Tell a scheduled run in words: who ran which statement, at which point, in what order, and where it switched.

:func:`narrate` turns a run's :class:`~racelab.harness.scheduler.Decision` list into numbered lines,
one per step that matters (statements, commits, rollbacks, enqueues, jobs, the app's own points),
marking each switch — where the scheduler preempted an actor that could have gone on — and the
fault, if any. ``db.executed`` and ``db.on_commit`` steps are folded into the step before them.
"""
from __future__ import annotations

__all__ = ["narrate", "describe_step"]

_QUIET = frozenset({"db.executed", "db.on_commit", "(start)"})
_QUIET_VERBS = frozenset({"BEGIN", "SAVEPOINT", "RELEASE", "SET", "SHOW"})


def describe_step(point: str, context: dict) -> str:
    """Return what passing ``point`` with ``context`` does, in a few words."""
    if point == "db.execute":
        verb, table = context.get("verb", "?"), context.get("table")
        where = {"SELECT": "from", "INSERT": "into", "DELETE": "from"}.get(verb, "on")
        text = f"runs {verb}{' … FOR UPDATE' if context.get('lock') else ''}" + (f" {where} {table}" if table else "")
        return text + (" (commits on its own)" if context.get("autocommit") and verb in ("INSERT", "UPDATE", "DELETE")
                       else "")
    if point == "db.commit":
        tables = ", ".join(context.get("tables") or ()) or "nothing"
        return (f"commits its write to {tables}" if context.get("autocommit")
                else f"commits its transaction (wrote {tables})")
    if point == "db.rollback":
        return "rolls its transaction back"
    if point == "rq.enqueue":
        when = f" for {context['scheduled']}" if context.get("scheduled") else ""
        return f"enqueues {_job(context)} on {context.get('queue')}{when}"
    if point == "rq.deferred":
        return f"has django-rq hold back {_job(context)} until {context.get('until')}"
    if point == "rq.dequeue":
        worker = f" (worker {context['worker']})" if context.get("worker") else ""
        return f"takes {_job(context)} from {context.get('queue')}{worker}"
    if point == "rq.job.start":
        return f"starts {_job(context)}{_args(context)}"
    if point == "rq.job.end":
        return f"ends {_job(context)} ({'ok' if context.get('ok') else 'raised: ' + str(context.get('error'))})"
    details = ", ".join(f"{key}={value}" for key, value in context.items() if isinstance(value, (int, str, bool)))
    return f"passes {point}" + (f" ({details})" if details else "")


def narrate(decisions, limit: int = 60) -> str:
    """Return the decisions of one run as numbered lines in words; only the last ``limit`` of them."""
    lines = []
    for decision in decisions:
        if decision.kind == "blocked":
            lines.append(f"{decision.step:>4}. {decision.actor} is blocked (a lock, or a long step) and waits")
            continue
        quiet = decision.point in _QUIET or (decision.point == "db.execute"
                                             and decision.context.get("verb") in _QUIET_VERBS)
        if quiet and not decision.switch and not decision.fault:
            continue
        head = f"{decision.step:>4}. "
        if decision.switch:
            others = ", ".join(a for a in decision.ready if a != decision.actor)
            head += f"— switch: {decision.actor} goes before {others} — "
        text = f"{head}{decision.actor} {describe_step(decision.point, decision.context)}"
        if decision.fault:
            text += f"  ✗ FAULT: {decision.fault} here"
        lines.append(text)
    if len(lines) > limit:
        lines = [f"   … {len(lines) - limit} earlier steps"] + lines[-limit:]
    return "\n".join(lines) or "   (no step)"


def _job(context):
    return str(context.get("job", "a job")).rsplit(".", 1)[-1]


def _args(context):
    args = context.get("args")
    return f"({', '.join(map(str, args))})" if isinstance(args, list) and len(str(args)) < 60 else ""
