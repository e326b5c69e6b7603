"""The one vocabulary preflight and smoketest report in.

Every step or check ends in one of four statuses, printed in capitals in the
first column; only `fail` makes the command fail.
"""

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"

# The name of the style in Django's color palette (command.style) for each status.
STYLES = {PASS: "SUCCESS", WARN: "WARNING", FAIL: "ERROR", SKIP: "WARNING"}


def style(command, status: str):
    """The function that colours a line of this status on a management command's output."""
    return getattr(command.style, STYLES[status])
