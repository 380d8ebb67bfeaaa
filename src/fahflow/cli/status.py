"""Exit codes of the ``fahflow`` command, in one place (cron wrappers alert on them)."""

SUCCESS = 0
ERROR = 1  # a FahflowError: bad input, server refused, analysis impossible
UNEXPECTED = 2  # a bug: anything else
