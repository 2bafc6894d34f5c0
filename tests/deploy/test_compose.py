"""Checks of docker-compose.yml, the Dockerfile and the admin command they use.

There is no Docker engine here, so nothing is built or started: the files are
parsed and compared with the code, and the one-shot registration service's
command runs against a Temporal dev server started by the test.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

import worker
from cli.admin import (
    SearchAttributeConflict,
    find_worker_problems,
    metrics_url,
    register_search_attributes,
)
from config import Settings
from tests.conftest import BIN_DIR
from workflows import names

yaml = pytest.importorskip("yaml", reason="pyyaml is needed to parse the compose file")

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
OUTBOUND_SERVICES = ("migrate", "register-search-attributes", "api", "worker")
SHARED_VARIABLES = (
    "OUTBOUND_DATABASE_URL",
    "OUTBOUND_TEMPORAL_ADDRESS",
    "OUTBOUND_TEMPORAL_NAMESPACE",
    "OUTBOUND_TASK_QUEUE",
    "OUTBOUND_WORKFLOW_ID_PREFIX",
    "OUTBOUND_PUBLIC_BASE_URL",
    "OUTBOUND_TWILIO_AUTH_TOKEN",
)
SECRET_NAME = re.compile(r"PASSWORD|PWD|TOKEN|API_KEY|SECRET|DATABASE_URL")
# ${NAME}, ${NAME:-default} or ${NAME:?message}, as compose interpolates them.
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<kind>:[-?])(?P<rest>[^}]*))?\}")
# Defaults the compose file chooses on purpose instead of the settings' own,
# because log collectors on a Docker host parse one JSON object a line.
PRODUCTION_DEFAULTS: dict[str, object] = {"OUTBOUND_LOG_JSON": True}
# pip options that change how much pip prints or caches, not what it installs.
QUIET_PIP_OPTIONS = frozenset({"--quiet", "-q", "--no-cache-dir"})
EDITABLE_PIP_OPTIONS = frozenset({"-e", "--editable"})


@cache
def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_services() -> dict[str, dict[str, Any]]:
    return load_compose()["services"]


def service_environment(service: str) -> dict[str, str]:
    """Return a service's environment as a mapping, in either compose form."""
    declared = compose_services()[service].get("environment", {})
    if isinstance(declared, list):
        return dict(item.split("=", 1) for item in declared)
    return {key: str(value) for key, value in declared.items()}


def find_interpolations(value: str) -> list[re.Match[str]]:
    return list(INTERPOLATION.finditer(value))


def test_compose_file_parses_as_yaml():
    assert isinstance(compose_services(), dict)


def test_compose_has_every_service():
    expected = {
        "postgresql",
        "temporal-schema",
        "temporal",
        "temporal-namespace",
        "temporal-ui",
        "prometheus",
        *OUTBOUND_SERVICES,
    }

    assert set(compose_services()) == expected


@pytest.mark.parametrize("service", sorted(compose_services()))
def test_compose_depends_on_existing_services(service):
    depends_on = compose_services()[service].get("depends_on", {})

    assert set(depends_on) <= set(compose_services())


@pytest.mark.parametrize("service", ["api", "worker"])
def test_compose_starts_after_migration_and_registration(service):
    depends_on = compose_services()[service]["depends_on"]

    assert depends_on["migrate"] == {"condition": "service_completed_successfully"}
    assert depends_on["register-search-attributes"] == {
        "condition": "service_completed_successfully"
    }


def test_compose_builds_use_the_dockerfile():
    builds = [
        (name, service["build"])
        for name, service in compose_services().items()
        if "build" in service
    ]

    assert sorted(name for name, _ in builds) == sorted(OUTBOUND_SERVICES)
    for name, build in builds:
        dockerfile = (ROOT / build["context"] / build["dockerfile"]).resolve()
        assert dockerfile == DOCKERFILE, name
        assert dockerfile.is_file(), name


def test_compose_images_are_pinned():
    for name, service in compose_services().items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")

        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image} is not pinned"
        assert "$" not in image, f"{name}: {image} depends on the environment"


def test_compose_mounts_existing_files():
    for name, service in compose_services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} is missing"


@pytest.mark.parametrize("service", OUTBOUND_SERVICES)
def test_compose_variables_are_settings(service):
    fields = set(Settings.model_fields)
    variables = [
        key for key in service_environment(service) if key.startswith("OUTBOUND_")
    ]

    unknown = [
        v for v in variables if v.removeprefix("OUTBOUND_").lower() not in fields
    ]

    assert variables
    assert unknown == []


@pytest.mark.parametrize("variable", SHARED_VARIABLES)
def test_compose_services_share_setting(variable):
    values = {
        service: service_environment(service).get(variable)
        for service in OUTBOUND_SERVICES
    }

    assert values["api"] is not None
    assert set(values.values()) == {values["api"]}


def test_compose_defaults_equal_settings_defaults(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for variable in [v for v in os.environ if v.startswith("OUTBOUND_")]:
        monkeypatch.delenv(variable)
    defaults = {
        match["name"]: match["rest"]
        for value in service_environment("worker").values()
        for match in find_interpolations(value)
        if match["name"].startswith("OUTBOUND_") and match["kind"] == ":-"
    }

    for variable, default in defaults.items():
        field = variable.removeprefix("OUTBOUND_").lower()
        with monkeypatch.context() as patch:
            patch.setenv(variable, default)
            from_compose = getattr(Settings(), field)

        expected = PRODUCTION_DEFAULTS.get(
            variable, Settings.model_fields[field].default
        )
        assert from_compose == expected, variable


def test_compose_secrets_come_from_environment():
    for name in compose_services():
        for key, value in service_environment(name).items():
            if not SECRET_NAME.search(key):
                continue
            found = find_interpolations(value)

            assert found, f"{name}: {key} is written into the compose file"
            assert all(m["kind"] == ":?" for m in found), f"{name}: {key} has a default"


def test_compose_worker_outlasts_shutdown_grace():
    period = compose_services()["worker"]["stop_grace_period"]
    seconds = int(period.removesuffix("s"))

    assert seconds > worker.SHUTDOWN_GRACE.total_seconds()


def test_compose_worker_healthcheck_reads_metrics():
    worker_service = compose_services()["worker"]

    assert worker_service["healthcheck"]["test"][-1] == "check-worker"
    assert service_environment("worker")["OUTBOUND_METRICS_BIND_ADDRESS"]


def test_prometheus_scrapes_worker_metrics_port():
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    (discovery,) = job["dns_sd_configs"]
    bind_address = service_environment("worker")["OUTBOUND_METRICS_BIND_ADDRESS"]

    assert discovery["names"] == ["worker"]
    assert str(discovery["port"]) == bind_address.rpartition(":")[2]


def test_compose_api_runs_the_factory():
    command = compose_services()["api"]["command"]

    assert command[:3] == ["uvicorn", "api.app:app_from_environment", "--factory"]


def test_docker_compose_config_accepts_file(tmp_path):
    probe = subprocess.run(
        ["docker", "compose", "version"], check=False, capture_output=True, text=True
    )
    if probe.returncode != 0:
        pytest.skip(
            "the docker compose plugin is not installed here, so `docker compose "
            f"config` cannot check the file: {probe.stderr.strip().splitlines()[0]}"
        )
    env = {**os.environ, **_required_variables()}

    result = subprocess.run(
        ["docker", "compose", "--file", str(COMPOSE_FILE), "config", "--quiet"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr


def _required_variables() -> dict[str, str]:
    return {
        match["name"]: "placeholder"
        for service in compose_services()
        for value in service_environment(service).values()
        for match in find_interpolations(value)
        if match["kind"] == ":?"
    }


# The worker's healthcheck, on metrics text shaped like the SDK's.

HEALTHY_METRICS = """\
# TYPE temporal_num_pollers gauge
temporal_num_pollers{namespace="default",poller_type="activity_task",task_queue="outbound"} 5
temporal_num_pollers{namespace="default",poller_type="workflow_task",task_queue="outbound"} 1
temporal_worker_task_slots_available{task_queue="outbound",worker_type="ActivityWorker"} 100
temporal_worker_task_slots_available{task_queue="outbound",worker_type="WorkflowWorker"} 100
"""


def test_worker_health_polling_is_healthy():
    assert find_worker_problems(HEALTHY_METRICS, "outbound") == []


def test_worker_health_without_pollers_is_unhealthy():
    text = HEALTHY_METRICS.replace("} 5", "} 0")

    problems = find_worker_problems(text, "outbound")

    assert len(problems) == 1
    assert "activity_task" in problems[0]


def test_worker_health_busy_slots_count_as_healthy():
    text = HEALTHY_METRICS.replace("} 5", "} 0").replace(
        'worker_type="ActivityWorker"} 100', 'worker_type="ActivityWorker"} 0'
    )

    assert find_worker_problems(text, "outbound") == []


def test_worker_health_ignores_other_task_queue():
    problems = find_worker_problems(HEALTHY_METRICS, "other")

    assert len(problems) == 2


def test_worker_health_without_metrics_is_unhealthy():
    assert len(find_worker_problems("", "outbound")) == 2


@pytest.mark.parametrize(
    ("bind_address", "expected"),
    [
        ("0.0.0.0:9464", "http://127.0.0.1:9464/metrics"),
        ("[::]:9464", "http://127.0.0.1:9464/metrics"),
        ("localhost:9000", "http://localhost:9000/metrics"),
    ],
)
def test_metrics_url_from_bind_address(bind_address, expected):
    assert metrics_url(bind_address) == expected


# The Dockerfile against the Makefile and pyproject.toml.


def parse_pip_installs(
    commands: list[str],
) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Return (options, requirements) of each ``pip install``, as installed.

    Options that only change output or caching are dropped, and so are the
    editable mode and extras, which the image leaves out on purpose. What
    remains is the requirement specifiers pip resolves and the options that
    change the result.
    """
    installs = []
    for command in commands:
        words = shlex.split(command)
        if "pip" not in words or "install" not in words:
            continue
        assert words[words.index("pip") - 1] == "-m", (
            f"pip not run as a module: {command}"
        )
        arguments = words[words.index("install") + 1 :]
        options = tuple(
            word
            for word in arguments
            if word.startswith("-")
            and word not in QUIET_PIP_OPTIONS | EDITABLE_PIP_OPTIONS
        )
        requirements = tuple(
            re.sub(r"\[.*\]$", "", word)
            for word in arguments
            if not word.startswith("-")
        )
        installs.append((options, requirements))
    return installs


def read_makefile_commands() -> list[str]:
    return [
        line.strip()
        for line in (ROOT / "Makefile").read_text().splitlines()
        if line.startswith("\t")
    ]


def read_dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def read_dockerfile_run_commands() -> list[str]:
    return [
        part.strip()
        for keyword, rest in read_dockerfile_instructions()
        if keyword == "RUN"
        for part in rest.split("&&")
    ]


def test_dockerfile_installs_like_makefile():
    from_makefile = parse_pip_installs(read_makefile_commands())
    from_dockerfile = parse_pip_installs(read_dockerfile_run_commands())

    assert from_makefile
    assert from_dockerfile == from_makefile


def test_dockerfile_copies_every_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    packages = [p.rstrip("*") for p in setuptools["packages"]["find"]["include"]]
    modules = [f"{m}.py" for m in setuptools["py-modules"]]
    copied = {
        word.rstrip("/").removeprefix("./")
        for keyword, rest in read_dockerfile_instructions()
        if keyword == "COPY"
        for word in rest.split()[:-1]
    }

    needed = [*packages, *modules, "pyproject.toml", project["project"]["readme"]]

    missing = [path for path in needed if path not in copied]

    assert missing == []


def test_dockerfile_runs_as_non_root_user():
    users = [
        rest for keyword, rest in read_dockerfile_instructions() if keyword == "USER"
    ]

    assert users
    assert users[-1] not in ("root", "0")


def test_dockerignore_keeps_env_file_out():
    patterns = (ROOT / ".dockerignore").read_text().splitlines()

    assert ".env" in patterns


# The registration service's command against a Temporal dev server.

CONFLICT_NAMESPACE = "conflict"


@pytest.fixture
async def bare_temporal() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server with no custom search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN_DIR / "temporal"),
        dev_server_log_level="error",
        dev_server_extra_args=["--namespace", CONFLICT_NAMESPACE],
    )
    yield env
    await env.shutdown()


def build_registration_command() -> list[str]:
    command = list(compose_services()["register-search-attributes"]["command"])
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


async def run_registration(
    env: WorkflowEnvironment, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    variables = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOUND_")}
    variables["OUTBOUND_TEMPORAL_ADDRESS"] = (
        env.client.service_client.config.target_host
    )
    variables["OUTBOUND_TEMPORAL_NAMESPACE"] = env.client.namespace
    process = await asyncio.create_subprocess_exec(
        *build_registration_command(),
        env=variables,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return subprocess.CompletedProcess(
        build_registration_command(),
        process.returncode,
        stdout.decode(),
        stderr.decode(),
    )


async def list_custom_attributes(client: Client, namespace: str) -> dict[str, int]:
    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return dict(response.custom_attributes)


def expected_attributes() -> dict[str, int]:
    return {
        key.name: int(key.indexed_value_type.value) for key in names.SEARCH_ATTRIBUTES
    }


async def test_registration_adds_search_attributes(bare_temporal, tmp_path):
    before = await list_custom_attributes(bare_temporal.client, "default")

    result = await run_registration(bare_temporal, tmp_path)
    after = await list_custom_attributes(bare_temporal.client, "default")

    assert result.returncode == 0, result.stderr
    assert set(before) & set(expected_attributes()) == set()
    assert {k: after.get(k) for k in expected_attributes()} == expected_attributes()


async def test_registration_names_what_it_added(bare_temporal, tmp_path):
    result = await run_registration(bare_temporal, tmp_path)

    for key in names.SEARCH_ATTRIBUTES:
        assert f"Added search attribute {key.name}" in result.stdout


async def test_registration_twice_succeeds(bare_temporal, tmp_path):
    await run_registration(bare_temporal, tmp_path)

    again = await run_registration(bare_temporal, tmp_path)

    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already exists") == len(names.SEARCH_ATTRIBUTES)


async def test_registration_attributes_are_keywords(bare_temporal, tmp_path):
    await run_registration(bare_temporal, tmp_path)

    after = await list_custom_attributes(bare_temporal.client, "default")

    for key in names.SEARCH_ATTRIBUTES:
        assert after[key.name] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD


async def test_registration_rejects_other_type(bare_temporal):
    client = bare_temporal.client
    conflicting_name = names.CAMPAIGN_ID.name
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=CONFLICT_NAMESPACE,
            search_attributes={
                conflicting_name: IndexedValueType.INDEXED_VALUE_TYPE_TEXT
            },
        )
    )

    with pytest.raises(SearchAttributeConflict, match=conflicting_name):
        await register_search_attributes(client, CONFLICT_NAMESPACE)
