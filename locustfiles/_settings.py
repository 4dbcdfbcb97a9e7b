"""Read the load suite's options: Locust command-line flags, each backed by an environment variable.

The flags are added to Locust's own parser (so ``locust --help`` lists them and
workers receive them); outside Locust, for instance in tests, the environment
variables and defaults apply. Nothing here reads a file or a Django setting.
"""
import os
from dataclasses import dataclass

MISSING_TOKEN = (
    "No API token for the target. Set RACELAB_TOKEN=<key> in the environment (`racelab load "
    "--token-file PATH` does it for you; --racelab-token <key> works too, but shows the key to every "
    "local user in the process list). On Label Studio the key is under Account & Settings → Access "
    "Token; `racelab serve` prints the path of the file that holds its token."
)

# (flag, environment variable, default, help) — one place for every option.
OPTIONS = (
    ("--racelab-token", "RACELAB_TOKEN", "", "API token sent as 'Authorization: Token <key>'."),
    ("--import-deadline", "RACELAB_IMPORT_DEADLINE", 30.0,
     "Seconds an import may take to show its tasks before it is recorded stuck."),
    ("--async-ratio", "RACELAB_ASYNC_RATIO", None,
     "Share of imports sent with ?async=true, 0..1 (default: each scenario's own weights)."),
    ("--watch-ratio", "RACELAB_WATCH_RATIO", 0.2,
     "Share of imports a second reader watches while they run, 0..1 (1 to hunt races with few users)."),
    ("--think-time", "RACELAB_THINK_TIME", "",
     "Seconds each user pauses between imports, as MIN-MAX or N (default: each scenario's own pace)."),
    ("--batch-size", "RACELAB_BATCH_SIZE", 1000, "Tasks in each import of the batch scenario."),
)


@dataclass(frozen=True)
class Settings:
    """The options one user runs with."""

    token: str
    import_deadline: float
    async_ratio: float | None
    watch_ratio: float
    think_time: tuple[float, float] | None = None
    batch_size: int = 1000


def add_arguments(parser):
    """Add the suite's flags to Locust's parser (call from Locust's ``init_command_line_parser``)."""
    for flag, env_var, default, help_text in OPTIONS:
        parser.add_argument(flag, env_var=env_var, default=default, help=f"racelab: {help_text}",
                            include_in_web_ui=flag != "--racelab-token")


def load_settings(environment=None):
    """Return the :class:`Settings` from Locust's parsed options, else the environment variables.

    A missing token is not an error here; :func:`require_token` raises it where
    a request is about to be sent.
    """
    parsed = getattr(environment, "parsed_options", None)
    values = {}
    for flag, env_var, default, _ in OPTIONS:
        attr = flag.lstrip("-").replace("-", "_")
        value = getattr(parsed, attr, None) if parsed is not None else None
        values[attr] = value if value not in (None, "") else os.environ.get(env_var, default)
    ratio = values["async_ratio"]
    return Settings(
        token=str(values["racelab_token"] or ""),
        import_deadline=float(values["import_deadline"]),
        async_ratio=None if ratio in (None, "") else _ratio(ratio, "--async-ratio / RACELAB_ASYNC_RATIO"),
        watch_ratio=_ratio(values["watch_ratio"], "--watch-ratio / RACELAB_WATCH_RATIO"),
        think_time=think_time(values["think_time"]),
        batch_size=_count(values["batch_size"], "--batch-size / RACELAB_BATCH_SIZE"),
    )


def require_token(settings):
    """Return the token, or raise ``RuntimeError`` saying where to set it."""
    if not settings.token:
        raise RuntimeError(MISSING_TOKEN)
    return settings.token


def think_time(value):
    """Return ``(min, max)`` seconds from ``"2-5"`` or ``"3"``, ``None`` from ``""``; raise ValueError otherwise."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        low, _, high = text.partition("-")
        bounds = (float(low), float(high or low))
    except ValueError:
        raise ValueError(f"--think-time / RACELAB_THINK_TIME {value!r} is not seconds; write e.g. 2-5 or 3") from None
    if not 0 <= bounds[0] <= bounds[1]:
        raise ValueError(f"--think-time / RACELAB_THINK_TIME {value!r} needs 0 <= MIN <= MAX")
    return bounds


def _ratio(value, where):
    ratio = float(value)
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"{where} must be between 0 and 1, got {value!r}")
    return ratio


def _count(value, where):
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"{where} {value!r} is not a whole number of tasks; write e.g. 1000") from None
    if count < 1:
        raise ValueError(f"{where} must be at least 1, got {value!r}")
    return count
