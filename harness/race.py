"""Race points: named places in an application where a test may intervene.

An application imports ``from racelab import race_point`` and calls
``race_point("import.after_upload_saved", file_upload_id=7)`` where a race can happen. The call
does nothing unless a controller is installed; then it calls ``controller.hit(name, context)``,
which may block, delay, record or raise. The application never installs one itself: the racelab
harness does (:func:`install`), in the test process and in the worker processes it starts.

This module imports nothing (no Django, RQ or pytest), so production code carries it for free:
with no controller a race point changes nothing around it and costs one global read and one
comparison (``tests/harness/test_race_point_cost.py``). It is the one copy: a copied module would
hold a controller of its own that no test installs, and its points would never be seen.
"""

_controller = None


def race_point(name, **context):
    """Report reaching the point ``name`` to the installed controller, if any."""
    if _controller is not None:
        _controller.hit(name, context)


def install(controller):
    """Install ``controller`` for this process and return the one it replaces."""
    global _controller
    previous, _controller = _controller, controller
    return previous


def installed():
    """Return the installed controller, or None."""
    return _controller
