"""Benchmarks for django-shipshape: each cost measured beside a baseline, in one run.

    python -m benchmarks            # the full run (a few minutes), as `nox -s bench` does
    python -m benchmarks --quick    # 1 run, 1 s of load, nginx only: proves the run works

Every row is a ratio to a baseline measured in the same run on the same machine,
interleaved run by run, so drift and noise hit both sides alike:

- copier copy and update of the template, against a trivial template with the
  same number of files and questions (in-process): `copier_costs`;
- `manage.py check --deploy` with the bundled `shipshape` app, against the same
  project without it, and `manage.py smoketest` against its own slowest
  request: `checks`;
- each rendered proxy config against the same binary with a bare reverse-proxy
  config (dynamic page and static file), the rendered stack against the stacks
  teams copy today (requests/s, p50 and p99 at 8, 64 and 256 connections), and
  p99 under 100 slow clients against p99 without them (wrk over TLS, loopback
  only): `serving`, `slow_clients`, `load`;
- the smoketest, check --deploy and copier update with more hosts and more
  files, against the size before: `growth`.

`run` puts them together; `report` prints a Markdown table and writes
benchmarks/results/latest.json with the machine and the versions measured.
Targets are reported, never enforced. The projects are rendered and served with
the tests' own helpers (tests/support/), so run it from the repository's root.
"""
