"""Static checks of docker/: the compose file, the Dockerfiles, their entry points and the configuration they use.

No Docker engine is needed. Every check is a function that returns the problems it finds; each runs on the real
files (no problems expected) and on a broken copy (the problem must be found), so a check that cannot fail
would show up here.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from redis.connection import parse_url

from recsys.config import PROJECT_ROOT, ConfigError, load_settings
from recsys.kafka.security import java_conf, librdkafka_conf

pytestmark = pytest.mark.unit

ROOT = PROJECT_ROOT
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
ENV_EXAMPLE = DOCKER / "env.example"
IMAGE_HOME = "/opt/recsys"  # where the project's images keep the project (RECSYS_HOME)
DOCKERFILES = {name: DOCKER / name / "Dockerfile" for name in ("spark", "api", "airflow")}
DUMMY_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
SECRET_NAME = re.compile(r"(?i)password|secret|(?<!access)_keys?$|token|fernet|jaas")  # an access key is a user
URL_PASSWORD = re.compile(r"://[^/:@\s]+:(?P<password>[^@\s]+)@")
VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
                      r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")


# ---------------------------------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------------------------------

def load_compose(path: Path = COMPOSE) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), f"{path}: no services"
    return data


def base_config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "conf" / "base.yaml").read_text())


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable syntax: $$, ${X}, ${X:-d}, ${X-d}, ${X:?e}, ${X?e}, ${X:+a}, $X."""
    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg, current = match.group("op"), match.group("arg") or "", env.get(name)
        if op in (":?", "?") and (current is None or (op == ":?" and current == "")):
            raise KeyError(f"{name}: {arg}")
        if op == ":-":
            return current or arg
        if op == "-":
            return arg if current is None else current
        if op == ":+":
            return arg if current else ""
        if op == "+":
            return arg if current is not None else ""
        return current or ""
    return VARIABLE.sub(sub, value)


def variables(text: str) -> dict[str, str | None]:
    """Every ${NAME...} of a text: its operator (None for plain references)."""
    found: dict[str, str | None] = {}
    for match in VARIABLE.finditer(text):
        name = match.group("name")
        if name and found.get(name) not in (":?", "?"):
            found[name] = match.group("op")
    return found


def dummy_environment(compose_text: str) -> dict[str, str]:
    """Values for compose's own variables: secrets get a hex dummy, optional ones their default."""
    env: dict[str, str] = {}
    for match in VARIABLE.finditer(compose_text):
        name, op = match.group("name"), match.group("op")
        if name and op in (":?", "?"):
            env[name] = DUMMY_SECRET
    return env


def service_environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    buffer = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        keyword, _, rest = (buffer + stripped).partition(" ")
        out.append((keyword.upper(), rest.strip()))
        buffer = ""
    return out


def dockerfile_args(rest: str) -> list[str]:
    return json.loads(rest) if rest.startswith("[") else shlex.split(rest)


def dockerfile_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in dockerfile_instructions(path):
        if keyword == "ENV":
            for item in shlex.split(rest):
                name, _, value = item.partition("=")
                env[name] = value
    return env


def copy_sources(path: Path) -> list[str]:
    """Sources of COPY/ADD from the build context (not from other stages)."""
    sources: list[str] = []
    for keyword, rest in dockerfile_instructions(path):
        if keyword not in ("COPY", "ADD"):
            continue
        args = dockerfile_args(rest)
        if any(a.startswith("--from=") for a in args):
            continue
        sources += [a for a in args if not a.startswith("--")][:-1]
    return sources


def dockerignore_patterns(context: Path) -> list[str]:
    path = context / ".dockerignore"
    if not path.exists():
        return []
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.strip().startswith("#")]


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def is_ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders decides; `!` re-includes."""
    parts = relative.strip("/").split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _glob_regex(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not negate
    return ignored


def image_built_by(service: dict[str, Any], compose_dir: Path = DOCKER) -> Path | None:
    build = service.get("build")
    if build is None:
        return None
    build = {"context": build} if isinstance(build, str) else build
    return (compose_dir / build.get("context", ".")).resolve() / build.get("dockerfile", "Dockerfile")


def pom_versions(path: Path) -> dict[str, str]:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    deps = ET.parse(path).getroot().findall("m:dependencies/m:dependency", ns)
    return {d.findtext("m:artifactId", namespaces=ns): d.findtext("m:version", namespaces=ns) for d in deps}


def lock_versions(path: Path) -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", path.read_text(), flags=re.M)
    return {name.lower(): version for name, version in pins}


def known_plain_variables() -> set[str]:
    """RECSYS_* variables (single underscore) the code or the scripts read, or conf/ names (auth.scopes)."""
    names: set[str] = set()
    files = [*ROOT.glob("recsys/**/*.py"), *ROOT.glob("api/**/*.py"), *ROOT.glob("docker/**/*.sh"),
             *ROOT.glob("spark_jobs/*.py"), *ROOT.glob("dags/*.py"), ROOT / "conf" / "base.yaml"]
    for path in files:
        names |= set(re.findall(r"\bRECSYS_[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*\b", path.read_text()))
    return names


# ---------------------------------------------------------------------------------------------------------------
# Checks: each returns a list of problems
# ---------------------------------------------------------------------------------------------------------------

def structure_problems(compose: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    services = compose["services"]
    declared_volumes = set(compose.get("volumes") or {})
    for name, service in services.items():
        if "image" not in service and "build" not in service:
            problems.append(f"{name}: neither image nor build")
        depends = service.get("depends_on") or {}
        for other in depends if isinstance(depends, (list, dict)) else []:
            if other not in services:
                problems.append(f"{name}: depends on unknown service {other}")
            elif other == name:
                problems.append(f"{name}: depends on itself")
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source and not source.startswith((".", "/", "~")) and source not in declared_volumes:
                problems.append(f"{name}: named volume {source} is not declared")
    return problems


def build_problems(compose: dict[str, Any], compose_dir: Path = DOCKER) -> list[str]:
    problems: list[str] = []
    for name, service in compose["services"].items():
        dockerfile = image_built_by(service, compose_dir)
        if dockerfile is None:
            continue
        build = service["build"]
        context = (compose_dir / (build if isinstance(build, str) else build.get("context", "."))).resolve()
        if not context.is_dir():
            problems.append(f"{name}: build context {context} does not exist")
        elif not (context == ROOT or ROOT in context.parents):
            problems.append(f"{name}: build context {context} is outside the project")
        if not dockerfile.is_file():
            problems.append(f"{name}: Dockerfile {dockerfile} does not exist")
    return problems


def copy_problems(dockerfile: Path, context: Path = ROOT) -> list[str]:
    """Every COPY/ADD source exists in the build context and is not left out of it by .dockerignore."""
    problems: list[str] = []
    patterns = dockerignore_patterns(context)
    for source in copy_sources(dockerfile):
        matches = sorted(context.glob(source)) if any(c in source for c in "*?[") else [context / source]
        matches = [m for m in matches if m.exists()]
        if not matches:
            problems.append(f"{dockerfile.name}: COPY source {source} does not exist")
            continue
        for match in matches:
            files = [match] if match.is_file() else [p for p in match.rglob("*") if p.is_file()]
            kept = [f for f in files if not is_ignored(str(f.relative_to(context)), patterns)]
            if not kept:
                problems.append(f"{dockerfile}: COPY source {source} is excluded by .dockerignore")
    return problems


def volume_problems(compose: dict[str, Any], compose_dir: Path = DOCKER) -> list[str]:
    """Bind-mount sources exist inside the project; mounted scripts are executable."""
    problems: list[str] = []
    for name, service in compose["services"].items():
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if not source.startswith((".", "/", "~")):
                continue
            path = (compose_dir / os.path.expanduser(source)).resolve()
            if ROOT not in path.parents:
                problems.append(f"{name}: bind mount {source} is outside the project")
            elif not path.exists():
                problems.append(f"{name}: bind mount source {source} does not exist")
            elif path.suffix == ".sh":
                problems += script_problems(path)
    return problems


def script_problems(path: Path) -> list[str]:
    if not path.is_file():
        return [f"{path}: missing"]
    problems = []
    if not path.stat().st_mode & stat.S_IXUSR:
        problems.append(f"{path}: not executable")
    if not path.read_text().startswith("#!"):
        problems.append(f"{path}: no #! line")
    return problems


def _image_paths(args: list[str]) -> list[str]:
    return [a for a in args if isinstance(a, str) and a.startswith(f"{IMAGE_HOME}/")]


def copied(dockerfile: Path, relative: str) -> bool:
    return any(relative == s.rstrip("/") or relative.startswith(s.rstrip("/") + "/") for s in copy_sources(dockerfile))


def entrypoint_problems(compose: dict[str, Any], dockerfiles: dict[str, Path] = DOCKERFILES,
                        compose_dir: Path = DOCKER) -> list[str]:
    """Entry points and commands that name a project script: it exists, is executable and is in the image."""
    problems: list[str] = []
    for dockerfile in dockerfiles.values():
        for keyword, rest in dockerfile_instructions(dockerfile):
            if keyword in ("ENTRYPOINT", "CMD") and rest.startswith("["):
                for path in _image_paths(json.loads(rest)):
                    relative = path[len(IMAGE_HOME) + 1:]
                    problems += script_problems(ROOT / relative)
                    if not copied(dockerfile, relative):
                        problems.append(f"{dockerfile}: {relative} is not copied into the image")
    for name, service in compose["services"].items():
        dockerfile = image_built_by(service, compose_dir)
        for key in ("entrypoint", "command"):
            value = service.get(key)
            args = value if isinstance(value, list) else shlex.split(value) if isinstance(value, str) else []
            for path in _image_paths(args):
                relative = path[len(IMAGE_HOME) + 1:]
                problems += script_problems(ROOT / relative)
                if dockerfile is None or not copied(dockerfile, relative):
                    problems.append(f"{name}: {key} {path} is not in its image")
    return problems


def config_key_problem(name: str, base: dict[str, Any]) -> str | None:
    """RECSYS__A__B must name a key of conf/base.yaml (anything below a free-form, empty mapping)."""
    parts = [p.lower() for p in name[len("RECSYS__"):].split("__")]
    node: Any = base
    for i, part in enumerate(parts):
        if isinstance(node, dict) and not node and i > 0:
            return None  # free-form mapping: spark.extra_conf, kafka.security
        if not isinstance(node, dict) or part not in node:
            return f"{name}: no key {'.'.join(parts[:i + 1])} in conf/base.yaml"
        node = node[part]
    return None


def variable_name_problems(names: dict[str, str], base: dict[str, Any], known: set[str]) -> list[str]:
    """names: variable -> where it is set."""
    problems: list[str] = []
    for name, where in sorted(names.items()):
        if name.startswith("RECSYS__"):
            problem = config_key_problem(name, base)
            if problem:
                problems.append(f"{where}: {problem}")
        elif name.startswith("RECSYS_") and name not in known:
            problems.append(f"{where}: {name} is read by nothing in the project")
    return problems


def secret_problems(compose: dict[str, Any]) -> list[str]:
    """Secrets only by reference to a required variable (or an optional one without a default), never literal."""
    problems: list[str] = []
    for name, service in compose["services"].items():
        for key, value in service_environment(service).items():
            refs = variables(value)
            masked = VARIABLE.sub("\x01", value)  # a password in a URL must be made of variables only
            if any(m.group("password").strip("\x01") for m in URL_PASSWORD.finditer(masked)):
                problems.append(f"{name}: {key} holds a password in its URL; use ${{VAR:?}}")
            if not SECRET_NAME.search(key):
                continue
            if not refs:
                problems.append(f"{name}: secret {key} is a literal; use ${{VAR:?...}}")
            for var, op in refs.items():
                default = re.search(r"\$\{" + var + r":?-([^}]*)\}", value)
                if op not in (":?", "?") and not (op in (":-", "-") and default and default.group(1) == ""):
                    problems.append(f"{name}: {key} takes {var} without requiring it (${{{var}:?...}})")
    return problems


def conf_secret_problems(conf_dir: Path = ROOT / "conf") -> list[str]:
    problems: list[str] = []
    for path in sorted(conf_dir.glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        security = (data.get("kafka") or {}).get("security") or {}
        for key in security:
            if SECRET_NAME.search(key.replace(".", "_")):
                problems.append(f"{path.name}: kafka.security.{key} is a secret; set it from the environment")
        url = (data.get("redis") or {}).get("url") or ""
        if URL_PASSWORD.search(url):
            problems.append(f"{path.name}: redis.url holds a password; set RECSYS__REDIS__URL in the environment")
    return problems


def service_settings_problems(compose: dict[str, Any], compose_text: str, compose_dir: Path = DOCKER) -> list[str]:
    """Each project service's configuration loads from conf/ + image ENV + compose environment, and the TLS and
    credentials it needs are there: Kafka SASL_SSL for both clients, Redis over TLS with a user, the CA mounted."""
    problems: list[str] = []
    env_vars = dummy_environment(compose_text)
    for name, service in compose["services"].items():
        raw = service_environment(service)
        dockerfile = image_built_by(service, compose_dir)
        image_env = dockerfile_env(dockerfile) if dockerfile and dockerfile.exists() else {}
        if "RECSYS_ENV" not in raw and "RECSYS_ENV" not in image_env:
            continue
        try:
            environ = {**image_env, **{k: interpolate(v, env_vars) for k, v in raw.items()}}
            settings = load_settings(environ["RECSYS_ENV"], environ=environ)
            librdkafka_conf(settings.kafka.security)
            java = java_conf(settings.kafka.security)
        except (ConfigError, KeyError) as exc:
            problems.append(f"{name}: {exc}")
            continue
        if java.get("security.protocol") != "SASL_SSL":
            problems.append(f"{name}: Kafka is not SASL_SSL ({java.get('security.protocol')})")
        redis = parse_url(settings.redis.url)
        if not settings.redis.url.startswith("rediss://") or not redis.get("username") or not redis.get("password"):
            problems.append(f"{name}: redis.url is not TLS with a user and password")
        mounts = {(v.split(":")[1] if isinstance(v, str) else v.get("target")) for v in service.get("volumes") or []}
        for path in (settings.kafka.security.get("ssl.ca.location"), redis.get("ssl_ca_certs")):
            if path and os.path.dirname(path) not in mounts:
                problems.append(f"{name}: {path} is used but {os.path.dirname(path)} is not mounted")
        if name.startswith("airflow"):
            conn = raw.get(f"AIRFLOW_CONN_{settings.airflow.spark_conn_id.upper()}")
            if not conn or json.loads(conn).get("host") != settings.spark.master:
                problems.append(f"{name}: connection {settings.airflow.spark_conn_id} does not point at "
                                f"{settings.spark.master}")
    return problems


def image_pin_problems(compose: dict[str, Any], dockerfiles: dict[str, Path] = DOCKERFILES) -> list[str]:
    problems: list[str] = []
    images = [(name, interpolate(str(s["image"]), {})) for name, s in compose["services"].items()
              if "image" in s and "build" not in s]
    for dockerfile in dockerfiles.values():
        args: dict[str, str] = {}
        stages = set()
        for keyword, rest in dockerfile_instructions(dockerfile):
            if keyword == "ARG" and "=" in rest:
                key, _, value = rest.partition("=")
                args[key] = value
            elif keyword == "FROM":
                parts = rest.split()
                image = re.sub(r"\$\{(\w+)\}", lambda m, known=args: known.get(m.group(1), ""), parts[0])
                if len(parts) == 3 and parts[1].upper() == "AS":
                    stages.add(parts[2])
                if image not in stages:
                    images.append((dockerfile.parent.name, image))
    for where, image in images:
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        if not tag or tag == "latest":
            problems.append(f"{where}: image {image!r} has no fixed tag")
    return problems


# ---------------------------------------------------------------------------------------------------------------
# The real files
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def test_compose_file_parses_and_holds_the_cluster(compose):
    services = compose["services"]
    for needed in ("kafka", "redis", "minio", "minio-init", "spark-master", "stream", "api", "airflow-scheduler",
                   "airflow-api-server"):
        assert needed in services, needed
    assert sum(s.get("command") == ["worker"] for s in services.values()) >= 2
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert structure_problems(compose) == []


def test_every_build_context_and_dockerfile_exists(compose):
    assert build_problems(compose) == []
    built = {image_built_by(s) for s in compose["services"].values()} - {None}
    assert built == set(DOCKERFILES.values())


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_every_copied_file_is_in_the_repository_and_the_build_context(image):
    assert copy_problems(DOCKERFILES[image]) == []


def test_every_bind_mount_source_exists(compose):
    assert volume_problems(compose) == []


def test_entry_points_exist_are_executable_and_are_in_their_images(compose):
    assert entrypoint_problems(compose) == []
    for script in [*DOCKER.glob("entrypoints/*"), *DOCKER.glob("spark/*.sh")]:
        assert script_problems(script) == [], script


def test_entry_points_run_what_the_project_runs():
    spark = (DOCKER / "entrypoints" / "spark.sh").read_text()
    assert "python -m recsys.spark.submit" in spark and "spark_jobs/" in spark
    assert "python -m api.server" in (DOCKER / "entrypoints" / "api.sh").read_text()
    api = dict(dockerfile_instructions(DOCKERFILES["api"]))
    assert api["USER"] not in ("root", "0") and "/healthz" in api["HEALTHCHECK"]
    assert copied(DOCKERFILES["airflow"], "dags/recsys_batch.py")


def test_every_config_override_names_a_real_key(compose):
    names = {}
    for service_name, service in compose["services"].items():
        names.update({k: f"compose {service_name}" for k in service_environment(service)})
    for image, dockerfile in DOCKERFILES.items():
        names.update({k: f"docker/{image}/Dockerfile" for k in dockerfile_env(dockerfile)})
    assert any(n.startswith("RECSYS__") for n in names)
    assert variable_name_problems(names, base_config(), known_plain_variables()) == []


def test_secrets_come_from_required_variables_never_from_files(compose):
    assert secret_problems(compose) == []
    assert conf_secret_problems() == []
    required = {n for n, op in variables(COMPOSE.read_text()).items() if op in (":?", "?")}
    example = dict(ln.split("=", 1) for ln in ENV_EXAMPLE.read_text().splitlines() if re.match(r"^[A-Z0-9_]+=", ln))
    assert required <= set(example), f"missing from docker/env.example: {sorted(required - set(example))}"
    assert all(example[name] == "" for name in example if SECRET_NAME.search(name)), "env.example holds a secret"


def test_cluster_configuration_loads_given_the_required_variables():
    environ = {"RECSYS__KAFKA__SECURITY__SASL_PASSWORD": DUMMY_SECRET,
               "RECSYS__REDIS__URL": f"rediss://recsys:{DUMMY_SECRET}@redis:6380/0?ssl_ca_certs=/tls/ca.crt"}
    settings = load_settings("cluster", environ=environ)
    assert settings.storage.delta_root.startswith("s3a://")
    assert java_conf(settings.kafka.security)["ssl.truststore.location"] == "/tls/ca.crt"
    assert parse_url(settings.redis.url)["password"] == DUMMY_SECRET


def test_every_service_configuration_loads_with_tls_and_credentials(compose):
    assert service_settings_problems(compose, COMPOSE.read_text()) == []


def test_servers_know_the_users_the_clients_log_in_as(compose):
    """The broker's PLAIN users and Redis' ACL user are the ones conf/cluster.yaml and the compose URLs name."""
    services = compose["services"]
    settings = load_settings("cluster", environ={})
    kafka = service_environment(services["kafka"])
    assert "CLIENT:SASL_SSL" in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert kafka["KAFKA_INTER_BROKER_LISTENER_NAME"] == "CLIENT"
    assert "CONTROLLER://localhost:" in kafka["KAFKA_LISTENERS"]  # the controller is not reachable from outside
    assert kafka["KAFKA_SASL_ENABLED_MECHANISMS"] == settings.kafka.security["sasl.mechanism"]
    jaas = kafka["KAFKA_LISTENER_NAME_CLIENT_PLAIN_SASL_JAAS_CONFIG"]
    assert f'user_{settings.kafka.security["sasl.username"]}="${{KAFKA_PASSWORD:?' in jaas
    stream = service_environment(services["stream"])
    assert stream["RECSYS__KAFKA__SECURITY__SASL_PASSWORD"].startswith("${KAFKA_PASSWORD:?")
    assert settings.kafka.bootstrap_servers == kafka["KAFKA_ADVERTISED_LISTENERS"].removeprefix("CLIENT://")
    redis = service_environment(services["redis"])
    url = parse_url(interpolate(stream["RECSYS__REDIS__URL"], {"REDIS_PASSWORD": DUMMY_SECRET}))
    assert url["username"] == redis["REDIS_USER"] and "${REDIS_PASSWORD:?" in redis["REDIS_PASSWORD"]
    assert re.fullmatch(redis["REDIS_KEY_PATTERN"].replace("*", ".*"), f"{settings.redis.key_prefix}:x")
    assert url["host"] == parse_url(settings.redis.url)["host"] and url["port"] == parse_url(settings.redis.url)["port"]


def test_images_are_pinned_to_the_project_versions(compose):
    assert image_pin_problems(compose) == []
    lock = lock_versions(ROOT / "requirements" / "lock.txt")
    airflow_lock = lock_versions(ROOT / "requirements" / "airflow-lock.txt")
    connectors = pom_versions(DOCKER / "jars" / "spark-connectors.pom.xml")
    assert connectors["spark-sql-kafka-0-10_2.13"] == lock["pyspark"]
    assert connectors["delta-spark_4.2_2.13"] == lock["delta-spark"]
    broker = pom_versions(DOCKER / "jars" / "kafka-broker.pom.xml")["kafka_2.13"]
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{broker}"
    import pyspark

    hadoop = {p.name for p in (Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar")}
    assert hadoop == {f"hadoop-client-api-{pom_versions(DOCKER / 'jars' / 'spark-s3a.pom.xml')['hadoop-aws']}.jar"}
    airflow = dict(dockerfile_instructions(DOCKERFILES["airflow"]))
    args = {k: v for k, _, v in (a.partition("=") for kw, a in dockerfile_instructions(DOCKERFILES["airflow"])
                                   if kw == "ARG")}
    assert args["AIRFLOW_IMAGE"] == f"apache/airflow:{airflow_lock['apache-airflow']}-python3.11"
    assert args["AIRFLOW_VERSION"] == airflow_lock["apache-airflow"]
    assert args["SPARK_PROVIDER_VERSION"] == airflow_lock["apache-airflow-providers-apache-spark"]
    assert args["PYSPARK_CLIENT_VERSION"] == airflow_lock["pyspark-client"]
    assert "PYTHONPATH" in airflow["ENV"]
    setup_uv = re.search(r"uv==([\d.]+)", (DOCKER / "local" / "setup.sh").read_text()).group(1)
    for dockerfile in DOCKERFILES.values():
        text = dockerfile.read_text()
        assert "requirements/lock.txt" in text and f"uv=={setup_uv}" in text, dockerfile
        base = re.search(r"ARG (?:PYTHON|AIRFLOW)_IMAGE=(\S+)", text).group(1)  # the image with the Python
        venv_python = set(re.findall(r"lib/(python3\.\d+)/site-packages", text))
        assert re.search(r"python:?3\.11", base) and venv_python == {"python3.11"}, dockerfile


def test_the_api_image_needs_no_spark():
    """docker/api/Dockerfile leaves pyspark, delta-spark and JAX out: nothing the API imports may need them."""
    assert "grep -vE '^(pyspark|delta-spark|jax|jaxlib|optax)=='" in DOCKERFILES["api"].read_text()
    probe = ("import importlib, pkgutil, sys\n"
             "import api, recsys.serving, recsys.stores\n"
             "for pkg in (api, recsys.serving, recsys.stores):\n"
             "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
             "        if m.name != 'api.wsgi':\n"
             "            importlib.import_module(m.name)\n"
             "print(sorted(n for n in ('pyspark', 'delta', 'py4j', 'jax', 'optax') if n in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "RECSYS_ENV": "test"}, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_spark_and_airflow_images_share_the_paths_executors_need():
    spark, airflow = (dockerfile_env(DOCKERFILES[n]) for n in ("spark", "airflow"))
    assert spark["SPARK_HOME"] == airflow["SPARK_HOME"] and spark["RECSYS_HOME"] == airflow["RECSYS_HOME"] == IMAGE_HOME
    assert spark["RECSYS__SPARK__JARS_DIR"] == airflow["RECSYS__SPARK__JARS_DIR"]
    python = airflow["RECSYS__SPARK__PYTHON"]  # the executors' Python, in the recsys-spark image
    assert python == f"{IMAGE_HOME}/.venv/bin/python" and "python -m venv .venv" in DOCKERFILES["spark"].read_text()


# ---------------------------------------------------------------------------------------------------------------
# The checks find what they look for
# ---------------------------------------------------------------------------------------------------------------

def test_interpolation_follows_compose():
    env = {"A": "x", "E": ""}
    assert interpolate("$${A}-${A}-${B:-d}-${E:-d}-${E-d}-${A:+y}", env) == "${A}-x-d-d--y"
    with pytest.raises(KeyError, match="need it"):
        interpolate("${E:?need it}", env)


def test_broken_compose_files_are_reported(compose, tmp_path):
    broken = copy.deepcopy(compose)
    services = broken["services"]
    services["api"]["environment"]["RECSYS__KAFKA__BOOTSTRAP_SERVER"] = "kafka:9092"
    services["api"]["environment"]["RECSYS_API_KEY"] = "x"
    services["api"]["environment"]["RECSYS__REDIS__URL"] = "rediss://recsys:hunter2@redis:6380/0"
    services["stream"]["environment"]["KAFKA_PASSWORD_LITERAL"] = "hunter2"
    services["kafka"]["environment"]["KAFKA_PASSWORD_DEFAULT"] = "${KAFKA_PASSWORD:-hunter2}"
    services["redis"]["volumes"].append("./entrypoints/missing.sh:/x.sh")
    services["redis"]["volumes"].append("../../outside:/y")
    services["stream"]["volumes"] = ["undeclared:/z"]
    services["stream"]["depends_on"]["nowhere"] = {"condition": "service_started"}
    services["api"]["build"]["dockerfile"] = "docker/api/Dockerfile.missing"
    services["certs"]["entrypoint"] = ["/opt/recsys/docker/entrypoints/missing.sh"]
    services["minio"]["image"] = "quay.io/minio/minio:latest"

    names = {k: "api" for k in service_environment(services["api"])}
    found = "\n".join(variable_name_problems(names, base_config(), known_plain_variables()))
    assert "kafka.bootstrap_server" in found and "RECSYS_API_KEY is read by nothing" in found
    found = "\n".join(secret_problems(broken))
    assert "KAFKA_PASSWORD_LITERAL is a literal" in found and "without requiring it" in found
    assert "holds a password in its URL" in found
    found = "\n".join(volume_problems(broken))
    assert "missing.sh does not exist" in found and "outside the project" in found
    found = "\n".join(structure_problems(broken))
    assert "undeclared is not declared" in found and "unknown service nowhere" in found
    assert "Dockerfile.missing does not exist" in "\n".join(build_problems(broken))
    assert "missing.sh: missing" in "\n".join(entrypoint_problems(broken))
    assert "has no fixed tag" in "\n".join(image_pin_problems(broken))
    found = "\n".join(service_settings_problems(broken, COMPOSE.read_text()))
    assert "api: environment: unknown key 'kafka.bootstrap_server'" in found

    no_tls = copy.deepcopy(compose)
    no_tls["services"]["stream"]["environment"]["RECSYS__REDIS__URL"] = "redis://redis:6379/0"
    no_tls["services"]["stream"]["environment"]["RECSYS__KAFKA__SECURITY__SECURITY.PROTOCOL"] = "PLAINTEXT"
    no_tls["services"]["api"]["volumes"] = []
    no_tls["services"]["airflow-scheduler"]["environment"]["AIRFLOW_CONN_SPARK_DEFAULT"] = '{"host": "local[2]"}'
    found = "\n".join(service_settings_problems(no_tls, COMPOSE.read_text()))
    for message in ("stream: redis.url is not TLS", "stream: Kafka is not SASL_SSL", "api: /tls/ca.crt is used",
                    "airflow-scheduler: connection spark_default"):
        assert message in found
    missing_secret = copy.deepcopy(compose)
    missing_secret["services"]["api"]["environment"]["RECSYS__KAFKA__SECURITY__SASL_PASSWORD"] = ""
    missing_secret["services"]["stream"]["environment"]["RECSYS__SERVING__PORT"] = "eighty"
    found = "\n".join(service_settings_problems(missing_secret, COMPOSE.read_text()))
    assert "api: kafka.security.sasl.username is set but sasl.password is not" in found
    assert "stream: invalid configuration" in found and "serving.port" in found


def test_broken_dockerfiles_and_scripts_are_reported(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python\nCOPY --chown=1:1 recsys nowhere.txt /opt/\nCOPY bench /x\n"
                          "COPY --from=build /a /b\nENTRYPOINT [\"/opt/recsys/docker/entrypoints/absent.sh\"]\n")
    problems = copy_problems(dockerfile)
    found = "\n".join(problems)
    assert "nowhere.txt does not exist" in found and "bench is excluded by .dockerignore" in found
    assert not any("source recsys " in p for p in problems)
    found = "\n".join(entrypoint_problems({"services": {}}, {"x": dockerfile}))
    assert "absent.sh: missing" in found and "not copied into the image" in found
    assert "has no fixed tag" in "\n".join(image_pin_problems({"services": {}}, {"x": dockerfile}))
    script = tmp_path / "run.sh"
    script.write_text("echo hi\n")
    assert {p.rsplit(": ", 1)[1] for p in script_problems(script)} == {"not executable", "no #! line"}


def test_dockerignore_rules_match_docker():
    patterns = ["*", "!recsys", "**/__pycache__", "docker/local"]
    assert not is_ignored("recsys/config.py", patterns)
    assert is_ignored("recsys/__pycache__/config.cpython-311.pyc", patterns)
    assert is_ignored(".venv/bin/python", patterns) and is_ignored("README.md", patterns)
    docker = ["*", "!docker", "docker/local"]
    assert is_ignored("docker/local/setup.sh", docker) and not is_ignored("docker/compose.yaml", docker)


def test_secrets_in_configuration_files_are_reported(tmp_path):
    (tmp_path / "x.yaml").write_text("kafka:\n  security:\n    sasl.password: hunter2\n"
                                     "redis:\n  url: rediss://u:hunter2@redis:6380/0\n")
    found = "\n".join(conf_secret_problems(tmp_path))
    assert "sasl.password is a secret" in found and "redis.url holds a password" in found
