"""What the command-line entry points share: one `error:` line for a user's mistake.

Bad input ends with one line on stderr and exit status 2 (`fail`); `flag_error_message` turns
an error raised while parsing --config and its overrides into that line; `EXPECTED` are the
errors a run raises for bad input (anything else is a bug and keeps its traceback).
"""

import re
import sys

from crimp_jax.config import TOP_LEVEL
from crimp_jax.data import DataError
from crimp_jax.summary import SummaryError
from crimp_jax.train.checkpoint import CheckpointMismatchError
from crimp_jax.train.loop import NonFiniteLossError

EXPECTED = (ValueError, DataError, CheckpointMismatchError, NonFiniteLossError, SummaryError)


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def flag_error_message(e: BaseException, argv) -> str:
    """One line for an error raised while parsing --config and its overrides."""
    if isinstance(e, AttributeError) and e.args and isinstance(e.args[0], KeyError):
        e = e.args[0]  # ml_collections: a misspelt key of a block
    text = " ".join(str(e).split())
    if isinstance(e, KeyError):
        raw = str(e.args[0] if e.args else e)
        hint = re.search(r'Did you mean "([^"]+)" instead of "([^"]+)"', raw)
        if hint:
            offenders = [a for a in argv if a.startswith("--config.")
                         and a.split("=", 1)[0].endswith(f".{hint[2]}")]
            return (f"{offenders[0] if offenders else '--config'}: unknown config key "
                    f"{hint[2]!r}; did you mean {hint[1]!r}? (docs/config.md lists every key)")
        key = raw.strip("'\"")
        key = key.split("'")[1] if "'" in key else key
        offenders = [a for a in argv if a.startswith("--config.")
                     and re.search(rf"[.=]{re.escape(key)}([.=]|$)", a.split("=", 1)[0] + "=")]
        where = offenders[0] if offenders else "--config"
        if offenders and offenders[0].split("=", 1)[0].split(".")[1] not in TOP_LEVEL:
            return (f"{where}: unknown config block {key!r}; blocks are: "
                    f"{', '.join(TOP_LEVEL)}")
        return f"{where}: unknown config key {key!r} ({text})"
    return text.removeprefix("flag ")
