"""Race points: named places in the import flow where a test may intervene.

``race_point(name, **context)`` does nothing unless a controller is installed;
then it calls ``controller.hit(name, context)``, which may block, delay, record
or raise. The service installs no controller itself: the racelab harness (or
any other tool) plugs one in with :func:`install`, or names one in the
``RACE_CONTROLLER`` setting as a dotted path to a zero-argument factory that
each process (web or worker) calls once at start-up.

A race point never changes the behaviour of the code around it when no
controller is installed, and costs one global read and one comparison.
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
