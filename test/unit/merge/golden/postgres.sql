-- create#1
CREATE SCHEMA IF NOT EXISTS "dw";

-- create#2
CREATE TABLE IF NOT EXISTS "dw"."dim_account" ("id" integer, "name" text, "email" text, "amount" numeric(12,2), "seen_at" timestamp with time zone, "_tm_valid_from" timestamp without time zone, "_tm_valid_to" timestamp without time zone, "_tm_is_current" boolean, "_tm_is_deleted" boolean, "_tm_row_hash" bytea, "_tm_run_id" text, "_tm_version_key" bytea, PRIMARY KEY ("_tm_version_key"));

-- create#3
CREATE INDEX IF NOT EXISTS "dim_account_tm_current" ON "dw"."dim_account" ("id") WHERE "_tm_is_current";

-- create#4
CREATE TABLE IF NOT EXISTS "dw"."_tm_ledger" ("pipeline" text NOT NULL, "run_id" text NOT NULL, "target_table" text NOT NULL, "boundary" timestamp without time zone NOT NULL, "inserted" bigint, "updated" bigint, "deleted" bigint, "committed_at" timestamp without time zone, PRIMARY KEY ("pipeline", "run_id"));

-- create#5
ALTER TABLE "dw"."_tm_ledger" ADD COLUMN IF NOT EXISTS "run_seq" bigint;

-- create#6
ALTER TABLE "dw"."_tm_ledger" ADD COLUMN IF NOT EXISTS "base_run_id" text;

-- create#7
ALTER TABLE "dw"."_tm_ledger" ADD COLUMN IF NOT EXISTS "read_to" text;

-- create#8
ALTER TABLE "dw"."_tm_ledger" ADD COLUMN IF NOT EXISTS "snapshot" text;

-- create#9
CREATE UNIQUE INDEX IF NOT EXISTS "_tm_ledger_one_per_base" ON "dw"."_tm_ledger" ("pipeline", "base_run_id");

-- create-hex-hashes#1
CREATE TABLE IF NOT EXISTS "dw"."dim_account" ("id" integer, "name" text, "email" text, "amount" numeric(12,2), "seen_at" timestamp with time zone, "_tm_valid_from" timestamp without time zone, "_tm_valid_to" timestamp without time zone, "_tm_is_current" boolean, "_tm_is_deleted" boolean, "_tm_row_hash" text, "_tm_run_id" text, "_tm_version_key" text, PRIMARY KEY ("_tm_version_key"));

-- evolve#1
CREATE SCHEMA IF NOT EXISTS "dw";

-- evolve#2
ALTER TABLE "dw"."dim_account" ADD COLUMN "email" text;

-- evolve#3
ALTER TABLE "dw"."dim_account" ALTER COLUMN "id" TYPE integer;

-- evolve#4
CREATE TABLE IF NOT EXISTS "dw"."_tm_ledger" ("pipeline" text NOT NULL, "run_id" text NOT NULL, "target_table" text NOT NULL, "boundary" timestamp without time zone NOT NULL, "inserted" bigint, "updated" bigint, "deleted" bigint, "committed_at" timestamp without time zone, PRIMARY KEY ("pipeline", "run_id"));

-- evolve#5
ALTER TABLE "dw"."_tm_ledger" ADD COLUMN IF NOT EXISTS "run_seq" bigint;

-- evolve#6
ALTER TABLE "dw"."_tm_ledger" ADD COLUMN IF NOT EXISTS "base_run_id" text;

-- evolve#7
ALTER TABLE "dw"."_tm_ledger" ADD COLUMN IF NOT EXISTS "read_to" text;

-- evolve#8
ALTER TABLE "dw"."_tm_ledger" ADD COLUMN IF NOT EXISTS "snapshot" text;

-- evolve#9
CREATE UNIQUE INDEX IF NOT EXISTS "_tm_ledger_one_per_base" ON "dw"."_tm_ledger" ("pipeline", "base_run_id");

-- ledger-check#1
SELECT 1 AS present FROM "dw"."_tm_ledger" WHERE "pipeline" = $1 AND "run_id" = $2;

-- ledger-head#1
SELECT "run_id" AS run_id, "base_run_id" AS base_run_id, "run_seq" AS run_seq, "read_to" AS read_to, "snapshot" AS snapshot FROM "dw"."_tm_ledger" WHERE "pipeline" = $1 ORDER BY COALESCE("run_seq", -1) DESC, "committed_at" DESC LIMIT 1;

-- scd2-retire#1
UPDATE "dw"."dim_account" AS t SET "_tm_valid_to" = s."_tm_valid_from", "_tm_is_current" = false FROM "dw"."_tm_stage_accounts" AS s WHERE t."id" = s."id" AND t."_tm_is_current" = true AND s."_tm_op" IN ('insert', 'update', 'delete');

-- scd2-retire#2
UPDATE "dw"."dim_account" AS t SET "email" = s."email", "name" = s."name", "amount" = s."amount", "seen_at" = s."seen_at", "_tm_row_hash" = s."_tm_row_hash" FROM "dw"."_tm_stage_accounts" AS s WHERE t."id" = s."id" AND t."_tm_is_current" = true AND s."_tm_op" = 'type1';

-- scd2-retire#3
INSERT INTO "dw"."dim_account" ("id", "name", "email", "amount", "seen_at", "_tm_valid_from", "_tm_valid_to", "_tm_is_current", "_tm_is_deleted", "_tm_row_hash", "_tm_run_id", "_tm_version_key") SELECT s."id", s."name", s."email", s."amount", s."seen_at", s."_tm_valid_from", NULL, true, false, s."_tm_row_hash", $1, s."_tm_version_key" FROM "dw"."_tm_stage_accounts" AS s WHERE s."_tm_op" IN ('insert', 'update');

-- scd2-retire#4
INSERT INTO "dw"."_tm_ledger" ("pipeline", "run_id", "target_table", "boundary", "inserted", "updated", "deleted", "run_seq", "base_run_id", "read_to", "snapshot", "committed_at") VALUES ($1, $2, $3, CAST($4 AS TIMESTAMP), $5, $6, $7, $8, $9, $10, $11, CURRENT_TIMESTAMP);

-- scd2-mark#1
INSERT INTO "dw"."dim_account" ("id", "name", "email", "amount", "seen_at", "_tm_valid_from", "_tm_valid_to", "_tm_is_current", "_tm_is_deleted", "_tm_row_hash", "_tm_run_id", "_tm_version_key") SELECT t."id", t."name", t."email", t."amount", t."seen_at", s."_tm_valid_from", NULL, true, true, t."_tm_row_hash", $1, s."_tm_version_key" FROM "dw"."dim_account" AS t, "dw"."_tm_stage_accounts" AS s WHERE t."id" = s."id" AND t."_tm_is_current" = true AND s."_tm_op" = 'delete';

-- scd2-mark#2
UPDATE "dw"."dim_account" AS t SET "_tm_valid_to" = s."_tm_valid_from", "_tm_is_current" = false FROM "dw"."_tm_stage_accounts" AS s WHERE t."id" = s."id" AND t."_tm_is_current" = true AND t."_tm_run_id" <> $1 AND s."_tm_op" IN ('insert', 'update', 'delete');

-- scd2-mark#3
UPDATE "dw"."dim_account" AS t SET "email" = s."email", "name" = s."name", "amount" = s."amount", "seen_at" = s."seen_at", "_tm_row_hash" = s."_tm_row_hash" FROM "dw"."_tm_stage_accounts" AS s WHERE t."id" = s."id" AND t."_tm_is_current" = true AND s."_tm_op" = 'type1';

-- scd2-mark#4
INSERT INTO "dw"."dim_account" ("id", "name", "email", "amount", "seen_at", "_tm_valid_from", "_tm_valid_to", "_tm_is_current", "_tm_is_deleted", "_tm_row_hash", "_tm_run_id", "_tm_version_key") SELECT s."id", s."name", s."email", s."amount", s."seen_at", s."_tm_valid_from", NULL, true, false, s."_tm_row_hash", $1, s."_tm_version_key" FROM "dw"."_tm_stage_accounts" AS s WHERE s."_tm_op" IN ('insert', 'update');

-- scd2-mark#5
INSERT INTO "dw"."_tm_ledger" ("pipeline", "run_id", "target_table", "boundary", "inserted", "updated", "deleted", "run_seq", "base_run_id", "read_to", "snapshot", "committed_at") VALUES ($1, $2, $3, CAST($4 AS TIMESTAMP), $5, $6, $7, $8, $9, $10, $11, CURRENT_TIMESTAMP);

-- scd2-ignore#1
UPDATE "dw"."dim_account" AS t SET "_tm_valid_to" = s."_tm_valid_from", "_tm_is_current" = false FROM "dw"."_tm_stage_accounts" AS s WHERE t."id" = s."id" AND t."_tm_is_current" = true AND s."_tm_op" IN ('insert', 'update');

-- scd2-ignore#2
UPDATE "dw"."dim_account" AS t SET "name" = s."name", "email" = s."email", "amount" = s."amount", "seen_at" = s."seen_at", "_tm_row_hash" = s."_tm_row_hash" FROM "dw"."_tm_stage_accounts" AS s WHERE t."id" = s."id" AND t."_tm_is_current" = true AND s."_tm_op" = 'type1';

-- scd2-ignore#3
INSERT INTO "dw"."dim_account" ("id", "name", "email", "amount", "seen_at", "_tm_valid_from", "_tm_valid_to", "_tm_is_current", "_tm_is_deleted", "_tm_row_hash", "_tm_run_id", "_tm_version_key") SELECT s."id", s."name", s."email", s."amount", s."seen_at", s."_tm_valid_from", NULL, true, false, s."_tm_row_hash", $1, s."_tm_version_key" FROM "dw"."_tm_stage_accounts" AS s WHERE s."_tm_op" IN ('insert', 'update');

-- scd2-ignore#4
INSERT INTO "dw"."_tm_ledger" ("pipeline", "run_id", "target_table", "boundary", "inserted", "updated", "deleted", "run_seq", "base_run_id", "read_to", "snapshot", "committed_at") VALUES ($1, $2, $3, CAST($4 AS TIMESTAMP), $5, $6, $7, $8, $9, $10, $11, CURRENT_TIMESTAMP);

-- scd1-retire#1
UPDATE "dw"."dim_account" AS t SET "name" = s."name", "email" = s."email", "amount" = s."amount", "seen_at" = s."seen_at", "_tm_valid_from" = s."_tm_valid_from", "_tm_is_deleted" = false, "_tm_row_hash" = s."_tm_row_hash", "_tm_run_id" = $1 FROM "dw"."_tm_stage_accounts" AS s WHERE t."id" = s."id" AND s."_tm_op" IN ('update', 'type1', 'insert');

-- scd1-retire#2
DELETE FROM "dw"."dim_account" AS t WHERE EXISTS (SELECT 1 FROM "dw"."_tm_stage_accounts" AS s WHERE t."id" = s."id" AND s."_tm_op" = 'delete');

-- scd1-retire#3
INSERT INTO "dw"."dim_account" ("id", "name", "email", "amount", "seen_at", "_tm_valid_from", "_tm_valid_to", "_tm_is_current", "_tm_is_deleted", "_tm_row_hash", "_tm_run_id", "_tm_version_key") SELECT s."id", s."name", s."email", s."amount", s."seen_at", s."_tm_valid_from", NULL, true, false, s."_tm_row_hash", $1, s."_tm_version_key" FROM "dw"."_tm_stage_accounts" AS s WHERE s."_tm_op" = 'insert' AND NOT EXISTS (SELECT 1 FROM "dw"."dim_account" AS t WHERE t."id" = s."id");

-- scd1-retire#4
INSERT INTO "dw"."_tm_ledger" ("pipeline", "run_id", "target_table", "boundary", "inserted", "updated", "deleted", "run_seq", "base_run_id", "read_to", "snapshot", "committed_at") VALUES ($1, $2, $3, CAST($4 AS TIMESTAMP), $5, $6, $7, $8, $9, $10, $11, CURRENT_TIMESTAMP);

-- scd1-mark#1
UPDATE "dw"."dim_account" AS t SET "name" = s."name", "email" = s."email", "amount" = s."amount", "seen_at" = s."seen_at", "_tm_valid_from" = s."_tm_valid_from", "_tm_is_deleted" = false, "_tm_row_hash" = s."_tm_row_hash", "_tm_run_id" = $1 FROM "dw"."_tm_stage_accounts" AS s WHERE t."id" = s."id" AND s."_tm_op" IN ('update', 'type1', 'insert');

-- scd1-mark#2
UPDATE "dw"."dim_account" AS t SET "_tm_is_deleted" = true, "_tm_run_id" = $1 FROM "dw"."_tm_stage_accounts" AS s WHERE t."id" = s."id" AND s."_tm_op" = 'delete';

-- scd1-mark#3
INSERT INTO "dw"."dim_account" ("id", "name", "email", "amount", "seen_at", "_tm_valid_from", "_tm_valid_to", "_tm_is_current", "_tm_is_deleted", "_tm_row_hash", "_tm_run_id", "_tm_version_key") SELECT s."id", s."name", s."email", s."amount", s."seen_at", s."_tm_valid_from", NULL, true, false, s."_tm_row_hash", $1, s."_tm_version_key" FROM "dw"."_tm_stage_accounts" AS s WHERE s."_tm_op" = 'insert' AND NOT EXISTS (SELECT 1 FROM "dw"."dim_account" AS t WHERE t."id" = s."id");

-- scd1-mark#4
INSERT INTO "dw"."_tm_ledger" ("pipeline", "run_id", "target_table", "boundary", "inserted", "updated", "deleted", "run_seq", "base_run_id", "read_to", "snapshot", "committed_at") VALUES ($1, $2, $3, CAST($4 AS TIMESTAMP), $5, $6, $7, $8, $9, $10, $11, CURRENT_TIMESTAMP);

-- describe#1
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum;

-- current-count#1
SELECT count(*) AS n FROM "dw"."dim_account" WHERE "_tm_is_current" AND NOT "_tm_is_deleted";

-- as-of#1
SELECT "id", "name", "email", CAST("amount" AS text) AS "amount", "seen_at" FROM "dw"."dim_account" WHERE "_tm_valid_from" <= CAST($1 AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AND ("_tm_valid_to" IS NULL OR "_tm_valid_to" > CAST($1 AS TIMESTAMPTZ) AT TIME ZONE 'UTC') AND "_tm_is_deleted" = false;

-- as-of-limited#1
SELECT "id", "name", "email", CAST("amount" AS text) AS "amount", "seen_at" FROM "dw"."dim_account" WHERE "_tm_valid_from" <= CAST($1 AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AND ("_tm_valid_to" IS NULL OR "_tm_valid_to" > CAST($1 AS TIMESTAMPTZ) AT TIME ZONE 'UTC') AND "_tm_is_deleted" = false ORDER BY "id", "name" LIMIT $2;

-- as-of-count#1
SELECT COUNT(*) AS n FROM "dw"."dim_account" WHERE "_tm_valid_from" <= CAST($1 AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AND ("_tm_valid_to" IS NULL OR "_tm_valid_to" > CAST($1 AS TIMESTAMPTZ) AT TIME ZONE 'UTC') AND "_tm_is_deleted" = false;

-- key-history#1
SELECT "id", "name", "email", CAST("amount" AS text) AS "amount", "seen_at", CASE WHEN "_tm_valid_from" <= CAST($1 AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AND ("_tm_valid_to" IS NULL OR "_tm_valid_to" > CAST($1 AS TIMESTAMPTZ) AT TIME ZONE 'UTC') AND "_tm_is_deleted" = false THEN 1 ELSE 0 END AS "_tm_at" FROM "dw"."dim_account" WHERE CAST("id" AS text) = $2 AND CAST("name" AS text) = $3 ORDER BY "_tm_valid_from", "_tm_is_deleted";
