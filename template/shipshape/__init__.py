"""The project's bundled checks: deploy checks, `preflight` and `smoketest`.

- checks.py adds to `manage.py check --deploy` what Django's own checks cannot
  see: committed secrets, stale hosts and origins, and settings that disagree
  with the proxy config in deploy/.
- `manage.py preflight` is the gate before a release; CI runs it on every merge.
- `manage.py smoketest https://...` checks a live deployment from the outside.
"""
