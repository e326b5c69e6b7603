"""Benchmarks for django-shipshape: each cost measured beside a baseline, in one run.

    python -m benchmarks            # the full run (a few minutes), as `nox -s bench` does
    python -m benchmarks --quick    # 1 run, 1 s of load, nginx only: proves the run works

Every row is a ratio to a baseline measured in the same run on the same machine,
interleaved run by run, so drift and noise hit both sides alike:

- copier copy and update of the template, against a trivial template with the
  same number of files and questions (in-process, so interpreter start-up does
  not dilute the ratio): `copier_costs`;
- `manage.py check --deploy` with the bundled `shipshape` app, against the same
  project without it in INSTALLED_APPS, and `manage.py smoketest` against a live
  stack, against its own slowest request: `checks`;
- requests per second through the rendered nginx and Caddy configs (wrk over
  TLS, loopback only, `load`), against gunicorn reached directly for a dynamic
  page and against a bare config of the same server for a static file: `serving`.

`run` puts them together; `report` prints a Markdown table and writes
benchmarks/results/latest.json with the machine and the versions measured.
Targets are reported, never enforced. The projects are rendered and served with
the tests' own helpers (tests/support/), so run it from the repository's root.
"""
