"""The Locust load scenarios: ``uploads``, ``batch``, ``pdf``, ``mixed``, ``rapid`` (one module each).

Run one with ``locust -f locustfiles/<name>.py``, or all with ``locust -f locustfiles/``
(modules starting with ``_`` are helpers, which Locust skips). They speak HTTP
only, take the token from ``RACELAB_TOKEN`` (or ``--racelab-token``) and, given
``--csv PREFIX --csv-full-history``, leave what ``python -m reports`` reads.

Together they model a busy production hour: of every 19 users, 12 upload small
files and 4 import mixed formats, pausing 2–6 s between imports as a person
does; one script imports 1000-task batches, one person uploads a 50-page PDF
every 5–10 s, and one script imports every half second into a shared project.
``--think-time MIN-MAX`` sets every user's pause instead, to push harder.
"""
