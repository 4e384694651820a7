#!/bin/bash
# ggh_contract_status.sh - daily contract status export (CSV) for the CS team.
# Runs from ec2-user's crontab at 06:00 JST.
export PATH=/usr/local/bin:/usr/bin:/bin

DB_HOST=@DB_HOST@
DB_PORT=@DB_PORT@
DB_USER=ggh_reader
DB_PASS='@DB_PASS@'
BUCKET=jram-gghouse
DATE=$(TZ=Asia/Tokyo date +%Y%m%d)
WORK=/home/ec2-user/work
SQL="SELECT id, tenant_id, room_id, status, start_date, end_date, monthly_rent_yen, updated_at FROM contracts ORDER BY id"

mkdir -p $WORK
echo "$(date '+%F %T') start contract status export $DATE"
mysql -h $DB_HOST -P $DB_PORT -u $DB_USER -p$DB_PASS --default-character-set=utf8mb4 \
  --batch -e "$SQL" basis | sed 's/\t/,/g' | gzip > $WORK/contract_status_$DATE.csv.gz
aws s3 cp $WORK/contract_status_$DATE.csv.gz s3://$BUCKET/dumps/contract_status_$DATE.csv.gz
rm -f $WORK/contract_status_$DATE.csv.gz
echo "$(date '+%F %T') done"
