"""Create the stack's S3 buckets (MLflow's artifacts, the DVC remote) if they are missing.

Compose runs it once (the ``buckets`` service) before the MLflow server and the worker
start; tests/integration/test_stack.py runs it against its own S3-compatible server.
Reads AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and NNPIPE_BUCKETS (names
separated by spaces). Waits for the endpoint for up to NNPIPE_WAIT_SECONDS (default 120).
"""

from __future__ import annotations

import os
import sys
import time


def main() -> int:
    import boto3
    from botocore.exceptions import ClientError, EndpointConnectionError

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    names = os.environ.get("NNPIPE_BUCKETS", "").split()
    if not endpoint or not names:
        print("buckets: set AWS_ENDPOINT_URL and NNPIPE_BUCKETS (e.g. 'mlflow dvc')",
              file=sys.stderr)
        return 2
    s3 = boto3.client("s3", endpoint_url=endpoint)
    deadline = time.monotonic() + float(os.environ.get("NNPIPE_WAIT_SECONDS", "120"))
    while True:
        try:
            existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
            break
        except EndpointConnectionError:
            if time.monotonic() > deadline:
                print(f"buckets: {endpoint} did not answer", file=sys.stderr)
                return 1
            time.sleep(2)
    for name in names:
        if name in existing:
            continue
        try:
            s3.create_bucket(Bucket=name)
        except ClientError as exc:  # another run created it meanwhile
            if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou",
                                                     "BucketAlreadyExists"):
                raise
        print(f"buckets: created s3://{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
