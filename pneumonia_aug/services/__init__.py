"""What `pneumonia-aug services up|down|status` runs: a private MLflow stack on 127.0.0.1.

`up` starts three services, each in its own process group, with all their data in one folder
(default `.services/`, git-ignored):

- PostgreSQL 15 (DIR/postgres): MLflow's backend store, database `mlflow`;
- SeaweedFS `weed mini` (DIR/seaweedfs): S3 for artifacts, bucket `mlflow`;
- `mlflow server --serve-artifacts`: clients only need its URL, it proxies the artifacts.

`up --host ADDRESS` binds the MLflow server elsewhere than 127.0.0.1, and only with `--auth`:
without a password, the server (which holds the S3 key) stays reachable from this machine
alone. PostgreSQL and SeaweedFS always stay on 127.0.0.1.

Pids and ports go to DIR/state.json, logs to DIR/logs/. `up` prints the shell exports on
stdout (`eval "$(pneumonia-aug services up)"`) and everything else on stderr.

Credentials come from these environment variables when set, else they are generated once into
DIR/credentials.json (mode 600) and reused by later `up`s:
PNEUMONIA_AUG_S3_ACCESS_KEY, PNEUMONIA_AUG_S3_SECRET_KEY, PNEUMONIA_AUG_POSTGRES_PASSWORD,
PNEUMONIA_AUG_MLFLOW_ADMIN_PASSWORD (user `admin`, 12+ characters) and
PNEUMONIA_AUG_MLFLOW_SECRET_KEY (Flask's CSRF key), both used by `up --auth` only.
PNEUMONIA_AUG_PG_BIN points at PostgreSQL's bin folder (default /usr/lib/postgresql/15/bin).

Modules: `base.py` (constants, credentials and state in DIR), `processes.py` (ports, process
groups), `postgres.py`, `seaweedfs.py`, `mlflow_server.py`, `stack.py`
(up, down, status). Whether a tracking server or an S3 bucket answers is
`pneumonia_aug/reachability.py`, which the tracking layer asks too. The commands are
`pneumonia_aug/cli/services.py`.
"""

from pneumonia_aug.reachability import check_s3, check_tracking_server
from pneumonia_aug.services.base import ServiceError, resolve_credentials
from pneumonia_aug.services.seaweedfs import s3_client
from pneumonia_aug.services.stack import (
           down,
           exports,
           missing_prerequisites,
           status,
           up,
)

__all__ = ["ServiceError", "check_s3", "check_tracking_server", "down", "exports",
           "missing_prerequisites", "resolve_credentials", "s3_client", "status",
           "up"]
