"""Gate and render the results of race and load runs: ``python -m reports --results DIR --out reports/latest``.

In code: ``racelab.reports.report.write_report(results_dir, out_dir)`` returns the
verdict and writes ``summary.md``, ``summary.json``, ``junit.xml`` and
``report.html``. Reads result files only; imports neither the service nor Locust.
"""
