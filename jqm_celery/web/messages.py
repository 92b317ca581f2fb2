"""Error messages in the words of the web UI: the button to press instead of the Python call or command.

The library's messages name the fix as Python (``jqm.hold('nightly')``) and as a ``jqm`` command; a
person in the browser needs the button. Each rule rewrites one such hint; a message without one is
shown as it is.
"""

from __future__ import annotations

import re

_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (
            r"put it on hold first \(jqm\.hold\('[^']*'\) or `jqm packages hold [^`]*`\)",
            "put it on hold first: press Put on hold on the package card",
        ),
        (
            r"ask to queue this one \(jqm\.run_now\(name, queue=True\) or `jqm packages run NAME --queue`\)",
            "press Queue a run to start this one when it has finished",
        ),
        (r"activate it first \(jqm\.activate\('[^']*'\)\)", "press Activate on the package card first"),
        (r"; to stop it while it runs: jqm\.abort\(\d+\)", "; to stop it while it runs, press Abort"),
        (r"; it has not started: jqm\.cancel\(\d+\)", "; it has not started: press Cancel"),
        (r"; abort it first \(jqm\.abort\(\d+\)\)", "; press Abort first"),
        (
            r"run the package again instead \(jqm\.run_now\('[^']*'\)\)",
            "run the package again instead: press Run now on the package card",
        ),
        (
            r"define the queue first \(jqm\.define_queue\('([^']*)', pool_size=4\)\)",
            r"an administrator defines the queue first (jqm queues define \1 --pool-size 4)",
        ),
        (
            r"define it first: jqm\.define_queue\('([^']*)', pool_size=4\)",
            r"an administrator defines it first (jqm queues define \1 --pool-size 4)",
        ),
    )
)


def for_web(message: str) -> str:
    """``message`` with its Python and command-line hints replaced by what to press in the web UI."""
    for pattern, replacement in _RULES:
        message = pattern.sub(replacement, message)
    return message
