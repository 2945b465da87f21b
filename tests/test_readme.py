"""The README's walkthrough, run as printed against a live keel.

The authentication, work and webhook examples are extracted from README.md and run by
bash, top to bottom, against a real server: every curl must answer 2xx
(``--fail-with-body``), so a step that breaks, or a value one step captures
for the next that is missing, fails here before a reader meets it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.servers import ServerProcess

README = Path(__file__).resolve().parents[1] / "README.md"
# The sections whose examples run, in order; each holds one sh block.
WALKTHROUGH = ("## Authentication walkthrough", "## Work: projects, tasks, reports, bookmarks", "## Webhooks")
PRINTED_BASE = "http://127.0.0.1:8000"


def sh_block(section: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(section + "\n")
    found = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    assert found, f"no sh block under {section}"
    return found.group(1)


def walkthrough_script(base_url: str, scratch: Path) -> str:
    body = "\n".join(sh_block(section) for section in WALKTHROUGH)
    assert PRINTED_BASE in body
    body = body.replace(PRINTED_BASE, base_url).replace("/tmp/", f"{scratch}/")
    # Every request must succeed; the README prints only successful ones.
    return 'set -euo pipefail\ncurl() { command curl --fail-with-body --max-time 10 "$@"; }\n' + body


@pytest.mark.readiness("docs.readme_walkthrough")
def test_the_readme_walkthrough_runs_as_printed(live_server: ServerProcess, tmp_path: Path) -> None:
    assert shutil.which("jq"), "the walkthrough needs jq (the README's prerequisites name it)"
    script = walkthrough_script(live_server.base_url, tmp_path)
    run = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, (
        f"exit {run.returncode}\n--- stdout\n{run.stdout[-3000:]}\n--- stderr\n{run.stderr[-3000:]}"
    )
    # Spot checks that the steps did what the comments say.
    assert '"email":"ada@example.com"' in run.stdout.replace(" ", "")
    assert '"secret":"keel_' in run.stdout.replace(" ", "")
    assert "Write release notes" in run.stdout
