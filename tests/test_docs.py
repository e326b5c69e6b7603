"""The docs site builds, and it documents every question and every check that exists."""

from __future__ import annotations

import re
import subprocess
import sys

import yaml

from .support.paths import ROOT

DOCS = ROOT / "docs"


def questions() -> list[str]:
    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    return [
        name
        for name, spec in config.items()
        if not name.startswith("_") and isinstance(spec, dict) and spec.get("when") is not False
    ]


def test_the_docs_site_builds_with_no_warning(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "checklist" / "index.html").exists()


def test_every_question_is_documented_in_the_docs_and_the_readme():
    documented = (DOCS / "questions.md").read_text()
    readme = (ROOT / "README.md").read_text()
    missing = [
        name for name in questions() if f"`{name}`" not in documented or f"`{name}`" not in readme
    ]
    assert missing == []


def test_every_check_id_the_docs_cite_exists():
    source = (ROOT / "template" / "shipshape" / "checks.py").read_text()
    defined = set(re.findall(r'id="(shipshape\.[WEI]\d{3})"', source))
    cited = set()
    for page in DOCS.rglob("*.md"):
        cited |= set(re.findall(r"shipshape\.[WEI]\d{3}", page.read_text()))
    assert cited - defined == set()
    assert defined - cited == set(), "every check is documented"
