"""CloudWatch metrics per run (dimension Job): Succeeded 0/1, Bytes, Seconds. A missing or late
datapoint is what an alarm watches; a failure to publish never changes the run's outcome."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from .aws import describe


def put_run(cloudwatch, namespace: str, job: str, succeeded: bool, nbytes: int, seconds: float) -> str | None:
    """Publish the run's metrics; the error text when that failed, else None."""
    dims = [{"Name": "Job", "Value": job}]
    data = [
        {"MetricName": "Succeeded", "Dimensions": dims, "Value": 1.0 if succeeded else 0.0, "Unit": "Count"},
        {"MetricName": "Bytes", "Dimensions": dims, "Value": float(nbytes), "Unit": "Bytes"},
        {"MetricName": "Seconds", "Dimensions": dims, "Value": float(seconds), "Unit": "Seconds"},
    ]
    try:
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)
    except (ClientError, BotoCoreError) as exc:
        return describe(exc)
    return None
