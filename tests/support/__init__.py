"""What the tests and the benchmarks share, by concern.

- `paths`: the repository and its cache folder.
- `git`: git commands, commits as the tests' author, releases.
- `rendering`: snapshots of the template, `copier copy` and `update` through copier's
  API or its command line, and the settings module a layout gives.
- `venvs`: the cached virtualenvs generated projects run in.
- `processes`: a clean environment, commands in a project, servers with a log.
- `ports`: free ports, and whether something listens.
- `binaries`: where nginx, Caddy, Chromium, PostgreSQL and the PyPI tools are.
- `proxies`: nginx and Caddy started around a config of their own folder.
- `client`: an HTTP client that reaches a stack as a browser reaches the site.
- `stack`: one rendered project served through gunicorn and its proxy over TLS.

Nothing here imports pytest: the benchmarks (`python -m benchmarks`) use it too.
"""
