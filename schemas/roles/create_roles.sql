-- Least-privilege roles for slowleak's ClickHouse database.
--
-- Not a numbered migration: roles are server-wide objects (not per database), and creating them
-- needs access management, a right the worker's user must not have. An administrator runs this
-- file once, after `slowleak schema apply`, and again when a migration adds a table the worker
-- writes:
--
--     clickhouse-client --user admin --multiquery < schemas/roles/create_roles.sql
--
-- The database is `slowleak` (the default of clickhouse_database); for another name, replace
-- `ON slowleak.` below. Then create users and grant them a role (granted roles are active by
-- default), for example:
--
--     CREATE USER slowleak_worker IDENTIFIED WITH sha256_password BY '...';
--     GRANT slowleak_writer TO slowleak_worker;
--     CREATE USER jane IDENTIFIED WITH sha256_password BY '...';
--     GRANT slowleak_analyst TO jane;
--
-- The worker runs as the writer with SLOWLEAK_CLICKHOUSE_USER / SLOWLEAK_CLICKHOUSE_PASSWORD and
-- without --apply-schema (migrations need CREATE and ALTER: apply them as an administrator).
-- Idempotent: every statement can run again.

-- Analysts read everything in the database and change nothing.
CREATE ROLE IF NOT EXISTS slowleak_analyst;
GRANT SELECT ON slowleak.* TO slowleak_analyst;

-- The worker (and `slowleak deliver`) append rows to the tables it writes, and nothing else:
-- no SELECT (but one, below), ALTER, DROP, TRUNCATE or CREATE. Checking that a table exists
-- needs no more: a privilege on a table lets its holder see that it exists.
CREATE ROLE IF NOT EXISTS slowleak_writer;
GRANT INSERT ON slowleak.events TO slowleak_writer;
GRANT INSERT ON slowleak.feedback TO slowleak_writer;
GRANT INSERT ON slowleak.alerts TO slowleak_writer;
GRANT INSERT ON slowleak.dead_letters TO slowleak_writer;
GRANT INSERT ON slowleak.detector_stats TO slowleak_writer;
GRANT INSERT ON slowleak.alert_deliveries TO slowleak_writer;
GRANT INSERT ON slowleak.cost_windows_1m TO slowleak_writer;
GRANT INSERT ON slowleak.guardrail_findings TO slowleak_writer;
-- An insert into cost_windows_1m runs its materialized views with the inserting user's rights:
-- they read the inserted block (SELECT on cost_windows_1m) and write the hour and day tables.
GRANT SELECT ON slowleak.cost_windows_1m TO slowleak_writer;
GRANT INSERT ON slowleak.cost_windows_1h TO slowleak_writer;
GRANT INSERT ON slowleak.cost_windows_1d TO slowleak_writer;
