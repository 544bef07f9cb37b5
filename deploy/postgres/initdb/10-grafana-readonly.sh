#!/usr/bin/env bash
# 10-grafana-readonly.sh — run once by the postgres image on a new data
# directory (/docker-entrypoint-initdb.d): a read-only login for Grafana's
# P&L and order panels. It may read every table the owner ($POSTGRES_USER,
# who runs `qbctl migrate`) creates later, in any schema, and write none.
# On an existing database run it by hand:
#   POSTGRES_USER=quantbus POSTGRES_DB=quantbus QB_GRAFANA_PG_PASSWORD=... \
#     bash deploy/postgres/initdb/10-grafana-readonly.sh   (with PGHOST etc. set)
# tests/e2e/test_deploy_dashboard.sh runs it on the test stack.
set -euo pipefail
role=${QB_GRAFANA_PG_USER:-qb_grafana}
pass=${QB_GRAFANA_PG_PASSWORD:?QB_GRAFANA_PG_PASSWORD must be set}
owner=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$owner}
psql -v ON_ERROR_STOP=1 -q --username "$owner" --dbname "$db" \
  -v role="$role" -v pass="$pass" -v owner="$owner" -v db="$db" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'pass')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" SET default_transaction_read_only = on;
GRANT CONNECT ON DATABASE :"db" TO :"role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" GRANT USAGE ON SCHEMAS TO :"role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" GRANT SELECT ON TABLES TO :"role";
-- Schemas and tables that exist already (a re-run after migrations).
SELECT format('GRANT USAGE ON SCHEMA %I TO %I; GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I',
              nspname, :'role', nspname, :'role')
  FROM pg_namespace WHERE nspname IN ('md', 'features', 'risk', 'trading', 'backtest', 'notify', 'api') \gexec
SQL
