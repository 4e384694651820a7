#!/bin/bash
# ggh_schema_snapshot.sh - weekly schema-only dump of basis (tables, views, routines, triggers).
# Runs from ec2-user's crontab on Sundays at 04:00 JST.
export PATH=/usr/local/bin:/usr/bin:/bin

DB_HOST=@DB_HOST@
DB_PORT=@DB_PORT@
DB_USER=ggh_reader
DB_PASS='@DB_PASS@'
BUCKET=jram-gghouse
DATE=$(TZ=Asia/Tokyo date +%Y%m%d)
WORK=/home/ec2-user/work

mkdir -p $WORK
echo "$(date '+%F %T') start schema snapshot $DATE"
mysqldump -h $DB_HOST -P $DB_PORT -u $DB_USER -p$DB_PASS \
  --no-data --routines --triggers --events --default-character-set=utf8mb4 basis \
  | gzip > $WORK/basis_schema_$DATE.sql.gz
aws s3 cp $WORK/basis_schema_$DATE.sql.gz s3://$BUCKET/dumps/schema/basis_schema_$DATE.sql.gz
rm -f $WORK/basis_schema_$DATE.sql.gz
echo "$(date '+%F %T') done"
