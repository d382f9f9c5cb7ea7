#!/bin/sh
# Patroni's post_bootstrap (patroni.yml): runs once, on the first primary,
# with a connection string to it as $1. Makes the role frikortd logs in as
# (its password from FRIKORT_DB_PASSWORD in Patroni's environment) and the
# database it owns; frikortd creates its tables there on first start.
set -eu
: "${FRIKORT_DB_PASSWORD:?FRIKORT_DB_PASSWORD is not set}"
psql "$1" -v ON_ERROR_STOP=1 -v pw="$FRIKORT_DB_PASSWORD" <<'SQL'
CREATE ROLE frikort LOGIN PASSWORD :'pw';
CREATE DATABASE frikort OWNER frikort;
SQL
