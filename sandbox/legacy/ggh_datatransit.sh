#!/bin/bash
# ggh_datatransit.sh - nightly full dump of the vendor DB (basis) to S3 for the Glue ETL.
# 2019-04 initial version. Runs from ec2-user's crontab at 05:30 JST.
export PATH=/usr/local/bin:/usr/bin:/bin

DB_HOST=@DB_HOST@
DB_PORT=@DB_PORT@
DB_USER=ggh_reader
DB_PASS='@DB_PASS@'
BUCKET=jram-gghouse
DATE=$(TZ=Asia/Tokyo date +%Y%m%d)
WORK=/home/ec2-user/work

mkdir -p $WORK
echo "$(date '+%F %T') start basis dump $DATE"
mysqldump -h $DB_HOST -P $DB_PORT -u $DB_USER -p$DB_PASS \
  --single-transaction --quick --routines --triggers --events --hex-blob \
  --default-character-set=utf8mb4 basis | gzip > $WORK/basis_$DATE.sql.gz
aws s3 cp $WORK/basis_$DATE.sql.gz s3://$BUCKET/dumps/basis_$DATE.sql.gz
rm -f $WORK/basis_$DATE.sql.gz
echo "$(date '+%F %T') done"
