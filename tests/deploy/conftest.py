"""Fixtures that run the rendered deploy files on a real container engine.

`engine` is the suite's own dockerd (tests/support/containers.py), shared by every
worker of the run and stopped by the last one. `compose_stack(proxy, database)`
renders a compose project, builds its images on local base images and starts it
with `docker compose up --wait`, once per session and worker; each combination's
tests share an xdist group, so each stack starts once per run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
import trustme

from ..support.containers import shared_engine, unavailable
from .stacks import ComposeStack, start_compose_stack


@pytest.fixture(scope="session")
def engine() -> Iterator[dict[str, str]]:
    """The environment that points docker and compose at the suite's engine."""
    reason = unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with shared_engine() as env:
        yield env


@pytest.fixture(scope="session")
def deploy_ca() -> trustme.CA:
    return trustme.CA(organization_name="django-shipshape deploy tests")


@pytest.fixture(scope="session")
def compose_stack(
    engine, template_repo, project_python, tmp_path_factory, deploy_ca
) -> Iterator[Callable[..., ComposeStack]]:
    stacks: dict[tuple[str, str], ComposeStack] = {}
    with ExitStack() as cleanup:

        def get(proxy: str, database: str) -> ComposeStack:
            if (proxy, database) not in stacks:
                stacks[proxy, database] = start_compose_stack(
                    cleanup, template=template_repo, python=project_python("5.2"),
                    workdir=tmp_path_factory.mktemp(f"compose-{proxy}-{database}"),
                    ca=deploy_ca, proxy=proxy, database=database,
                )  # fmt: skip
            return stacks[proxy, database]

        yield get
