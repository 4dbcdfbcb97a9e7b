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

COMMANDS = ("serve", "races", "load", "bench", "run")


def build_parser():
    """Return the argument parser with one sub-parser per available command."""
    parser = argparse.ArgumentParser(prog="racelab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"racelab.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"racelab.commands.{name}":
                raise
            continue
        help_line = (module.__doc__ or name).strip().splitlines()[0]
        command = sub.add_parser(name, help=help_line, description=module.__doc__)
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
    return parser


def main(argv=None):
    """Run the command named in ``argv`` and return its exit code."""
    args = build_parser().parse_args(argv)
    # A cancelled CI job (SIGTERM) unwinds like Ctrl-C: every server and worker started is stopped.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return args.handler(args)


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
