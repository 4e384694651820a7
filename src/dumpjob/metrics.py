"""CloudWatch metrics per run (dimension Job): Succeeded 0/1, Bytes, Seconds, Attempts, and
Anomaly 0/1 when the run compared its dump with the previous one. A missing or late datapoint is
what an alarm watches; a failure to publish never changes the run's outcome."""

from __future__ import annotations

from typing import Optional

from botocore.exceptions import BotoCoreError, ClientError

from .aws import describe


def put_run(cloudwatch, namespace: str, job: str, succeeded: bool, nbytes: int, seconds: float, attempts: int = 1,
            anomaly: Optional[bool] = None) -> str | None:
    """Publish the run's metrics; the error text when that failed, else None. `anomaly` None: the
    run made no comparison (it failed before), and no Anomaly datapoint is put."""
    dims = [{"Name": "Job", "Value": job}]
    data = [
        {"MetricName": "Succeeded", "Dimensions": dims, "Value": 1.0 if succeeded else 0.0, "Unit": "Count"},
        {"MetricName": "Bytes", "Dimensions": dims, "Value": float(nbytes), "Unit": "Bytes"},
        {"MetricName": "Seconds", "Dimensions": dims, "Value": float(seconds), "Unit": "Seconds"},
        {"MetricName": "Attempts", "Dimensions": dims, "Value": float(attempts), "Unit": "Count"},
    ]
    if anomaly is not None:
        data.append({"MetricName": "Anomaly", "Dimensions": dims, "Value": 1.0 if anomaly else 0.0, "Unit": "Count"})
    try:
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)
    except (ClientError, BotoCoreError) as exc:
        return describe(exc)
    return None
