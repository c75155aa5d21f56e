#!/bin/sh
# Run once by the postgres image when the scaleout profile's primary is first initialised: lets
# the replica stream from it (password-checked, from the compose network only).
set -eu
echo "host replication postgres samenet scram-sha-256" >> "$PGDATA/pg_hba.conf"
