"""Logging filters referenced from LOGGING in the settings."""

import logging


class DowngradeToWarning(logging.Filter):
    """Log a record at WARNING at most, so it never pages anyone.

    Django logs a request with an unknown Host (DisallowedHost) at ERROR, which
    mail_admins and error trackers treat as an outage. Scanners send such
    requests all day; they deserve a line in the log, not an alert.
    """

    def filter(self, record):
        if record.levelno > logging.WARNING:
            record.levelno = logging.WARNING
            record.levelname = logging.getLevelName(logging.WARNING)
        return True
