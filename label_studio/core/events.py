"""Structured log events: one event name per step of the import flow, fields not f-strings.

``event("import.tasks_committed", import_id=3, file_upload_id=7, task_count=1000)``
logs one JSON line on the ``racelab.events`` logger. Events never raise, and
never change what the flow does.
"""
import json
import logging
import time

logger = logging.getLogger("racelab.events")


def event(name, level=logging.INFO, **fields):
    """Log the event ``name`` with ``fields`` as structured data."""
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={"event": name, "fields": fields})


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object: time, level, event and its fields."""

    def format(self, record):
        payload = {
            "ts": round(time.time(), 6),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", record.getMessage()),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)
