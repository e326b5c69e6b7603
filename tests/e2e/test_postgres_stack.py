"""The postgres option end to end: nginx, gunicorn and a real PostgreSQL server."""

from __future__ import annotations

import pytest

from ..postgres import postgres_database, postgres_server  # noqa: F401
from ..support.client import cookie_header, log_in_to_admin


@pytest.fixture(scope="module")
def postgres_stack(stack, postgres_database):  # noqa: F811
    return stack("nginx", database="postgres", database_url=postgres_database("e2e"))


@pytest.mark.xdist_group("e2e-postgres")
def test_admin_login_through_nginx_works_on_postgresql(postgres_stack, client_for):
    served, client = postgres_stack, client_for(postgres_stack)
    assert client.get("/", host=served.domain).status_code == 200, served.logs()
    form, response = log_in_to_admin(client, served, served.origin())
    assert response.status_code == 302, response.text[:2000]
    index = client.get("/admin/", host=served.domain,
                       headers={"Cookie": cookie_header(form, response)})  # fmt: skip
    assert index.status_code == 200
    assert f"<strong>{served.admin_username}</strong>" in index.text
