"""Fix flags: one switch per fix of the race catalogue, all on by default.

Turning a flag off brings its race back exactly as the seed plan describes it,
for race reproduction and staged roll-out; nothing else reads these flags.
Read them with :func:`fix_enabled`, which looks at ``settings.IMPORT_FIXES`` on
every call, so ``override_settings`` and per-process environments both work.
"""
from django.conf import settings

#: The fixes, each with the one line that says what turning it off brings back.
FIXES = {
    "R1": "file upload, its tasks and its status change commit in one transaction (off: the upload commits first, tasks later)",
    "R2": "jobs are enqueued when the dispatching transaction commits (off: enqueued at once, before the commit)",
    "R3": "PDF pages fan in atomically: counters by F() under a row lock, the last page finalises (off: read-modify-write on the parent)",
    "R4": "delayed and non-default-database dispatches wait for the commit too (off: django-rq's holes — they go out at once)",
    "R5": "file uploads report pending/processing/completed/failed, moved atomically with task creation (off: no status moves, all look completed)",
    "R6": "task_count is counted in the query (off: cached per file upload, never refreshed)",
    "R7": "the async import response says what to poll: import id, status, file upload ids, poll_url (off: only the import id)",
    "R8": "a reconciler re-enqueues imports left created/pending past a timeout (off: a lost job leaves the import stuck)",
    "R9": "jobs claim their row with a conditional update (off: a doubled job creates its tasks twice)",
    "R10": "one transaction per unit of work and stale-claim recovery (off: tasks commit in batches, a dead worker leaves partial tasks)",
    "R11": "task inner ids are allocated under a project row lock (off: max()+1 without a lock)",
    "R12": "a unit of work commits only under its own claim's token, and a claim is released when its RQ worker is dead (off: a stalled worker whose claim was released and re-run commits too)",
}


def fixes_from_env(value):
    """Return ``{fix: bool}`` from ``all``, ``none`` or a comma list of the fixes that stay on.

    Raises ValueError naming the unknown ids and the valid ones; never ignores one.
    """
    value = (value or "all").strip()
    if value.lower() == "all":
        return {fix: True for fix in FIXES}
    if value.lower() == "none":
        return {fix: False for fix in FIXES}
    wanted = {part.strip().upper() for part in value.split(",") if part.strip()}
    unknown = sorted(wanted - set(FIXES))
    if unknown:
        raise ValueError(
            f"Unknown fix id(s) {', '.join(unknown)} in RACELAB_FIXES={value!r}; "
            f"use 'all', 'none' or a comma list of {', '.join(FIXES)}."
        )
    return {fix: fix in wanted for fix in FIXES}


def fixes_spec(fixes):
    """Return the ``RACELAB_FIXES`` value that gives ``fixes`` (``{fix: on}``) to another process."""
    on = [fix for fix, enabled in fixes.items() if enabled]
    return "all" if len(on) == len(fixes) else ",".join(on) or "none"


def fix_enabled(fix):
    """Return True when ``fix`` (``"R1"`` … ``"R12"``) is on in ``settings.IMPORT_FIXES``.

    A fix missing from the setting counts as on; an unknown id raises KeyError.
    """
    if fix not in FIXES:
        raise KeyError(f"Unknown fix {fix!r}; valid fixes are {', '.join(FIXES)}.")
    return settings.IMPORT_FIXES.get(fix, True)
