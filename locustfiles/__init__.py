"""The Locust load scenarios: ``uploads``, ``batch``, ``pdf``, ``mixed``, ``rapid`` (one module each).

Run one with ``locust -f locustfiles/<name>.py``, or all with ``locust -f locustfiles/``
(modules starting with ``_`` are helpers, which Locust skips). They speak HTTP
only, take the token from ``RACELAB_TOKEN`` (or ``--racelab-token``) and, given
``--csv PREFIX --csv-full-history``, leave what ``python -m reports`` reads.
"""
