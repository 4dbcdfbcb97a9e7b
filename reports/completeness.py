"""Read the completeness check made after a load run: ``completeness.json``, into four gate keys.

:mod:`racelab.completeness` waits, bounded, until every import is final, then
reads the app's database and writes the file:

- ``imports_not_final``: imports and file uploads still ``created``/``pending``/
  ``in_progress``/``processing`` when the wait ended (``wait_limit_s``, the stuck
  timeout + 60 s);
- ``wrong_task_counts``: completed imports whose files show another task count than
  the load users sent (``sent`` in ``*_racelab.json``);
- ``project_total_mismatches``: projects whose task total is not the sum of their
  completed files' tasks and the tasks of JSON-body imports (a task of an unfinished
  or failed file is a partial write);
- ``duplicate_tasks``: tasks beyond the first with the same data in one project
  (every task the load sends carries a unique text).

``examples`` says which rows broke a rule. Nothing here reads a database.
"""
COMPLETENESS_JSON = "completeness.json"
COMPLETENESS_KEYS = ("imports_not_final", "wrong_task_counts", "project_total_mismatches", "duplicate_tasks")


def completeness_metrics(data):
    """Return ``{gate key: value}`` (all ``None`` without the file), ``"completeness"`` (details) and ``"sources"``."""
    metrics = dict.fromkeys(COMPLETENESS_KEYS)
    if not isinstance(data, dict):
        return {**metrics, "completeness": None, "sources": {}}
    checked = data.get("checked") or {}
    source = (f"{checked.get('imports', 0)} imports, {checked.get('files', 0)} files, {checked.get('tasks', 0)} tasks, "
              f"after waiting {data.get('waited_s', 0):g} of {data.get('wait_limit_s', 0):g} s")
    sources = {key: f"not measured: {data['not_measured']}" for key in COMPLETENESS_KEYS} if data.get("not_measured") else {}
    for key in COMPLETENESS_KEYS:
        if data.get(key) is not None:
            metrics[key] = int(data[key])
            sources[key] = source
    return {**metrics, "completeness": data, "sources": sources}
