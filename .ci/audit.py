"""Dependency audit: fail on any known vulnerability in the installed packages.

pip-audit is the engine. Where its advisory lookup (the index's per-version
JSON API) is unreachable, each skipped package is checked against the
advisories the index publishes for the package's current release, and every
package that could not be checked either way is listed, so a gap is visible
instead of passing silently.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from importlib.metadata import version as installed_version
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

INDEX = "https://pypi.org/pypi/{name}/json"
PROJECT = "keel"  # this project itself, installed editable; not a dependency


def pip_audit() -> list[dict]:
    pip_audit_bin = Path(sys.executable).with_name("pip-audit")
    result = subprocess.run(
        [str(pip_audit_bin), "--format", "json", "--skip-editable", "--progress-spinner", "off"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 1):  # 1 means "vulnerabilities found"
        sys.stderr.write(result.stderr)
        raise SystemExit(f"pip-audit failed with exit code {result.returncode}")
    return json.loads(result.stdout)["dependencies"]


def latest_release_advisories(name: str, version: str) -> tuple[str, list[str]]:
    """('checked'|'newer-exists'|'unreachable', advisory ids) for one package."""
    try:
        with urllib.request.urlopen(INDEX.format(name=name), timeout=20) as response:  # noqa: S310
            project = json.load(response)
    except OSError:
        return "unreachable", []
    if project["info"]["version"] != version:
        return "newer-exists", []
    advisories = [v["id"] for v in project.get("vulnerabilities", []) if not v.get("withdrawn")]
    return "checked", advisories


def main() -> int:
    dependencies = pip_audit()
    vulnerable = {f"{d['name']} {d['version']}": [v["id"] for v in d["vulns"]] for d in dependencies if d.get("vulns")}
    # pip-audit reports no version for what it skipped; this runs in the same venv.
    skipped = [
        {**d, "version": installed_version(d["name"])}
        for d in dependencies
        if d.get("skip_reason") and d["name"] != PROJECT
    ]
    audited = len(dependencies) - len(skipped)

    with ThreadPoolExecutor(max_workers=8) as pool:
        fallbacks = list(pool.map(lambda d: latest_release_advisories(d["name"], d["version"]), skipped))
    unchecked = []
    for dependency, (outcome, advisories) in zip(skipped, fallbacks, strict=True):
        label = f"{dependency['name']} {dependency['version']}"
        if advisories:
            vulnerable[label] = advisories
        if outcome != "checked":
            unchecked.append(f"{label} ({outcome})")

    checked_by_index = len(skipped) - len(unchecked)
    print(f"audit: {audited} packages by pip-audit, {checked_by_index} against the index's current-release advisories")
    if unchecked:
        print(f"audit: {len(unchecked)} packages could not be checked: {', '.join(sorted(unchecked))}")
    if vulnerable:
        for label, advisories in sorted(vulnerable.items()):
            print(f"VULNERABLE: {label}: {', '.join(advisories)}")
        return 1
    print("audit: no known vulnerabilities")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
