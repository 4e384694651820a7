"""dumpjob: stream mysqldump to S3, all or nothing."""

__version__ = "0.1.0"
