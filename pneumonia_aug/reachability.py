"""Fail fast: is a tracking server, or an S3 bucket, there? Seconds, not MLflow's retries.

Asked by the tracking layer before a run starts, and by `services` of the stack it starts;
it knows neither (standard library, and boto3 for S3)."""

from __future__ import annotations

import urllib.error
import urllib.request

from pneumonia_aug.errors import TrackingError


def has_server(uri: str) -> bool:
    """Whether a tracking URI names a server (http or https), not a local store."""
    return uri.startswith(("http://", "https://"))


def check_tracking_server(uri: str, timeout: float = 5) -> None:
    """Raise TrackingError within `timeout` s unless the server at `uri` answers `/health`.

    Non-HTTP URIs (sqlite, file) have no server to check and pass.
    """
    if not has_server(uri):
        return
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(f"MLflow tracking server {uri} is unreachable ({reason}): start it "
                            "(`pneumonia-aug services up`) or fix MLFLOW_TRACKING_URI") from exc
    if status != 200:
        raise TrackingError(f"MLflow tracking server {uri} answered HTTP {status} on /health: "
                            "check the server's log")


def check_s3(endpoint: str, key: str, secret: str, bucket: str) -> None:
    """Raise TrackingError within seconds unless `bucket` at `endpoint` is listable."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = s3_client_at(endpoint, {"s3_access_key": key, "s3_secret_key": secret})
    try:
        client.list_objects_v2(Bucket=bucket, MaxKeys=1)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        if code in ("NoSuchBucket", "404"):
            raise TrackingError(f"S3 bucket {bucket!r} does not exist at {endpoint}: create it "
                                "(`pneumonia-aug services up` creates `mlflow`)") from exc
        raise TrackingError(f"S3 at {endpoint} refused access to bucket {bucket!r} ({code}): "
                            "check the access key and secret") from exc
    except BotoCoreError as exc:
        raise TrackingError(f"S3 endpoint {endpoint} is unreachable ({exc})") from exc


def s3_client_at(endpoint: str, creds: dict):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=creds["s3_access_key"],
                        aws_secret_access_key=creds["s3_secret_key"], region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}, connect_timeout=2,
                                      read_timeout=5))
