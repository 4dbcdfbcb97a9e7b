"""The ``racelab`` command line: the one place that wires the service, the harness,
the scenarios, the load suite and the reports together.

Each sub-command lives in ``racelab/commands/<name>.py`` and provides
``add_arguments(parser)`` and ``run(args) -> int`` (the exit code), plus a
module docstring whose first line is the command's help.
"""
import argparse
import importlib
import signal
import sys

from racelab.checkout import NotACheckout

COMMANDS = ("serve", "races", "explore", "load", "bench", "run")
#: Third-party modules of an optional extra, and the extra that brings them.
EXTRAS = {"locust": "load", "psutil": "load", "requests": "load", "gevent": "load"}


def build_parser():
    """Return the argument parser with one sub-parser per available command."""
    parser = argparse.ArgumentParser(prog="racelab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"racelab.commands.{name}")
        except (NotACheckout, ModuleNotFoundError) as exc:
            _add_unavailable(sub, name, exc)
            continue
        help_line = (module.__doc__ or name).strip().splitlines()[0]
        command = sub.add_parser(name, help=help_line, description=module.__doc__)
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
    return parser


def _add_unavailable(sub, name, exc):
    """Register ``name`` as a command that only says why it cannot run here and what fixes it."""
    if isinstance(exc, ModuleNotFoundError):
        extra = EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            raise exc
        reason = f"racelab {name} needs {exc.name}, from the {extra!r} extra: pip install 'racelab[{extra}]'."
    else:
        reason = str(exc)
    command = sub.add_parser(name, help=f"(unavailable here: see racelab {name} --help)", description=reason)
    command.set_defaults(handler=lambda args: print(f"racelab {name}: {reason}", file=sys.stderr) or 2)


def main(argv=None):
    """Run the command named in ``argv`` and return its exit code."""
    args = build_parser().parse_args(argv)
    # A cancelled CI job (SIGTERM) unwinds like Ctrl-C: every server and worker started is stopped.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return args.handler(args)
    except NotACheckout as exc:
        print(f"racelab {args.command}: {exc}", file=sys.stderr)
        return 2


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
