"""Do it all (what `make run` does): the races in both modes, each found from its actors alone, a short load run, one gated report.

The races run on the scenarios (``racelab races``), their explorations on the same database
(``racelab explore``, one seed, worker threads), the load on the bundled app served for it
(``racelab load``); all go into one report under ``reports/latest/`` whose gates decide the exit code.
"""
import argparse
from pathlib import Path

from racelab.commands import explore, races
from racelab.dbwatch import WatchError
from racelab.loadrun import LoadError, load_and_report


def add_arguments(parser):
    parser.add_argument("--seeds", type=int, default=3, help="Seeded runs per race and mode (default 3).")
    parser.add_argument("--races-db", default="postgres",
                        help="Database of the race scenarios (default postgres, where every race can happen).")
    parser.add_argument("--explore-budget", type=int, default=30,
                        help="Runs per race exploration, in both modes (default 30).")
    parser.add_argument("--users", type=int, default=10, help="Concurrent load users (default 10).")
    parser.add_argument("--run-time", default="30s", help="Length of the load run (default 30s).")
    parser.add_argument("--think-time", default="0.5-2",
                        help="Each load user's pause between imports (default 0.5-2: a short run wants many imports).")
    parser.add_argument("--db", default="postgres", help="Database of the served app under load (default postgres).")
    parser.add_argument("--out", default="reports/latest", help="Report folder (default reports/latest).")


def run(args):
    races_json = Path(args.out) / "races.json"
    race_args = argparse.Namespace(mode="both", only="", seeds=args.seeds, seed=None, db=args.races_db, workers=2,
                                   no_scheduler=False, output=races_json)
    races_code = races.run(race_args)
    print()
    explore_args = argparse.Namespace(only="", mode="both", db=args.races_db, budget=args.explore_budget, seeds=1,
                                      seed=None, strategy="pos", on="threads", workers=2, confirm=2,
                                      output=Path(args.out) / "explore.json")
    races_code = explore.run(explore_args) or races_code
    print()
    try:
        load_code, headline = load_and_report(scenario="all", users=args.users, run_time=args.run_time, db=args.db,
                                              think_time=args.think_time, races_json=races_json, out=args.out)
    except (LoadError, WatchError) as exc:
        print(f"racelab run: {exc}")
        return 2
    print(f"\nracelab run: {headline}\n  open {Path(args.out).resolve() / 'report.html'}")
    return races_code or load_code
