"""Static checks of the Dockerfile (no Docker engine runs in CI; scripts/build-image.sh builds it with podman)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from qa.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
BUILD_SCRIPT = ROOT / "scripts" / "build-image.sh"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, rest = full.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def env_vars(stage: list[tuple[str, str]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for keyword, rest in stage:
        if keyword == "ENV":
            for name, value in re.findall(r"([A-Z_][A-Z0-9_]*)=(\S+)", rest):
                found[name] = value
    return found


def test_multi_stage_from_a_base_image_argument() -> None:
    steps = instructions()
    first_from = next(i for i, (k, _) in enumerate(steps) if k == "FROM")
    args_before = [rest for k, rest in steps[:first_from] if k == "ARG"]
    assert any(a.startswith("BASE_IMAGE") for a in args_before), "ARG BASE_IMAGE must precede the first FROM"
    froms = [rest for k, rest in steps if k == "FROM"]
    assert len(froms) >= 2, "multi-stage: a build stage and a runtime stage"
    assert all(f.startswith("${BASE_IMAGE}") for f in froms)
    assert any(k == "COPY" and "--from=" in rest for k, rest in stages()[-1])


def test_cpu_torch_is_installed_first_and_pinned() -> None:
    runs = [rest for k, rest in stages()[0] if k == "RUN"]
    torch_step = next(i for i, r in enumerate(runs) if "torch==2.13.0" in r)
    project_step = next(i for i, r in enumerate(runs) if re.search(r"pip install .*\s\.(\s|$)", r))
    assert torch_step < project_step
    assert "FIND_LINKS" in runs[torch_step], "local wheels (/opt/wheels) must be usable via a build argument"
    assert "torch.version.cuda is None" in runs[torch_step]


def test_index_is_built_in_the_image_offline() -> None:
    build = stages()[0]
    assert any(k == "RUN" and rest.startswith("qa index") for k, rest in build)
    assert env_vars(build).get("HF_HUB_OFFLINE") == "1"
    assert env_vars(stages()[-1]).get("HF_HUB_OFFLINE") == "1"


def test_runtime_is_non_root_with_a_readyz_healthcheck() -> None:
    runtime = stages()[-1]
    users = [rest for k, rest in runtime if k == "USER"]
    assert users and users[-1] not in ("root", "0"), "the runtime stage must switch to a non-root USER"
    checks = [rest for k, rest in runtime if k == "HEALTHCHECK"]
    assert len(checks) == 1 and "/readyz" in checks[0]


def test_serves_on_all_interfaces_port_8000_configured_by_settings() -> None:
    runtime = stages()[-1]
    env = env_vars(runtime)
    assert env.get("QA_HOST") == "0.0.0.0" and env.get("QA_PORT") == "8000"
    unknown = [
        n for n in env if n.startswith("QA_") and n.removeprefix("QA_").lower() not in Settings.model_fields
    ]
    assert not unknown, f"ENV sets variables that are not settings: {unknown}"
    assert ("EXPOSE", "8000") in runtime
    cmd = [rest for k, rest in runtime if k == "CMD"]
    assert cmd and cmd[-1].startswith('["qa", "serve"')


def test_dockerignore_keeps_local_state_out() -> None:
    patterns = [
        p.strip()
        for p in (ROOT / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    assert patterns[0] == "*", "allow-list: ignore everything, then re-include what the build copies"
    included = {p[1:] for p in patterns if p.startswith("!")}
    copied = {rest.split()[0] for k, rest in stages()[0] if k == "COPY" and not rest.startswith("--")}
    assert copied <= included, f"COPY sources missing from .dockerignore's allow-list: {copied - included}"
    assert not {".venv", "index", ".git"} & included


def test_build_script_is_valid_bash() -> None:
    assert os.access(BUILD_SCRIPT, os.X_OK)
    if shutil.which("bash") is None:
        pytest.skip("bash not installed")
    subprocess.run(["bash", "-n", str(BUILD_SCRIPT)], check=True)


def test_smoke_test_binds_loopback_and_checks_the_answer() -> None:
    script = BUILD_SCRIPT.read_text(encoding="utf-8")
    serve = next(line for line in script.splitlines() if "-- qa serve" in line)
    assert "QA_HOST=127.0.0.1" in serve, "the smoke server must not listen on every interface of the host"
    assert '"abstained":false' in script and "SD-101" in script, "the smoke test checks the answer, not a 200"


def test_the_image_has_the_postgres_driver_for_replicas() -> None:
    """Replicas of the image share one conversation store when QA_DATABASE_URL is set: psycopg is in it."""
    runs = [rest for k, rest in stages()[0] if k == "RUN"]
    assert any(re.search(r"pip install .*\"\.\[postgres\]\"", r) for r in runs)
