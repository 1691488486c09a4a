-- create#1
CREATE SCHEMA IF NOT EXISTS "dw";

-- create#2
CREATE TABLE IF NOT EXISTS "dw"."dim_account" ("id" INTEGER, "name" VARCHAR, "email" VARCHAR, "amount" DECIMAL(12,2), "seen_at" TIMESTAMP WITH TIME ZONE, "_tm_valid_from" TIMESTAMP, "_tm_valid_to" TIMESTAMP, "_tm_is_current" BOOLEAN, "_tm_is_deleted" BOOLEAN, "_tm_row_hash" BLOB USING COMPRESSION uncompressed, "_tm_run_id" VARCHAR, "_tm_version_key" BLOB USING COMPRESSION uncompressed);

-- create#3
CREATE TABLE IF NOT EXISTS "dw"."_tm_ledger" ("pipeline" VARCHAR NOT NULL, "run_id" VARCHAR NOT NULL, "target_table" VARCHAR NOT NULL, "boundary" TIMESTAMP NOT NULL, "inserted" BIGINT, "updated" BIGINT, "deleted" BIGINT, "committed_at" TIMESTAMP, PRIMARY KEY ("pipeline", "run_id"));

-- create#4
ALTER TABLE "dw"."_tm_ledger" ADD COLUMN IF NOT EXISTS "run_seq" BIGINT;

-- create#5
ALTER TABLE "dw"."_tm_ledger" ADD COLUMN IF NOT EXISTS "base_run_id" VARCHAR;

-- create#6
ALTER TABLE "dw"."_tm_ledger" ADD COLUMN IF NOT EXISTS "read_to" VARCHAR;

-- create#7
ALTER TABLE "dw"."_tm_ledger" ADD COLUMN IF NOT EXISTS "snapshot" VARCHAR;

-- create#8
CREATE UNIQUE INDEX IF NOT EXISTS "_tm_ledger_one_per_base" ON "dw"."_tm_ledger" ("pipeline", "base_run_id");

-- create-hex-hashes#1
CREATE TABLE IF NOT EXISTS "dw"."dim_account" ("id" INTEGER, "name" VARCHAR, "email" VARCHAR, "amount" DECIMAL(12,2), "seen_at" TIMESTAMP WITH TIME ZONE, "_tm_valid_from" TIMESTAMP, "_tm_valid_to" TIMESTAMP, "_tm_is_current" BOOLEAN, "_tm_is_deleted" BOOLEAN, "_tm_row_hash" VARCHAR, "_tm_run_id" VARCHAR, "_tm_version_key" VARCHAR);

-- evolve#1
CREATE SCHEMA IF NOT EXISTS "dw";

-- evolve#2
ALTER TABLE "dw"."dim_account" ADD COLUMN "email" VARCHAR;

-- evolve#3
ALTER TABLE "dw"."dim_account" ALTER COLUMN "id" TYPE INTEGER;

-- evolve#4
CREATE TABLE IF NOT EXISTS "dw"."_tm_ledger" ("pipeline" VARCHAR NOT NULL, "run_id" VARCHAR NOT NULL, "target_table" VARCHAR NOT NULL, "boundary" TIMESTAMP NOT NULL, "inserted" BIGINT, "updated" BIGINT, "deleted" BIGINT, "committed_at" TIMESTAMP, PRIMARY KEY ("pipeline", "run_id"));

-- evolve#5
ALTER TABLE "dw"."_tm_ledger" ADD COLUMN IF NOT EXISTS "run_seq" BIGINT;

-- evolve#6
ALTER TABLE "dw"."_tm_ledger" ADD COLUMN IF NOT EXISTS "base_run_id" VARCHAR;

-- evolve#7
ALTER TABLE "dw"."_tm_ledger" ADD COLUMN IF NOT EXISTS "read_to" VARCHAR;

-- evolve#8
ALTER TABLE "dw"."_tm_ledger" ADD COLUMN IF NOT EXISTS "snapshot" VARCHAR;

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

-- scd2-retire-close-by-copy#1
INSERT INTO "dw"."dim_account" SELECT t.* REPLACE (s."_tm_valid_from" AS "_tm_valid_to", false AS "_tm_is_current") FROM "dw"."dim_account" AS t JOIN (SELECT "id", min("_tm_valid_from") AS "_tm_valid_from" FROM "dw"."_tm_stage_accounts" WHERE "_tm_op" IN ('insert', 'update', 'delete') GROUP BY "id") AS s ON t."id" = s."id" WHERE t."_tm_is_current" = true;

-- scd2-retire-close-by-copy#2
DELETE FROM "dw"."dim_account" AS t USING "dw"."_tm_stage_accounts" AS s WHERE t."id" = s."id" AND t."_tm_is_current" = true AND s."_tm_op" IN ('insert', 'update', 'delete');

-- scd2-retire-close-by-copy#3
UPDATE "dw"."dim_account" AS t SET "email" = s."email", "name" = s."name", "amount" = s."amount", "seen_at" = s."seen_at", "_tm_row_hash" = s."_tm_row_hash" FROM "dw"."_tm_stage_accounts" AS s WHERE t."id" = s."id" AND t."_tm_is_current" = true AND s."_tm_op" = 'type1';

-- scd2-retire-close-by-copy#4
INSERT INTO "dw"."dim_account" ("id", "name", "email", "amount", "seen_at", "_tm_valid_from", "_tm_valid_to", "_tm_is_current", "_tm_is_deleted", "_tm_row_hash", "_tm_run_id", "_tm_version_key") SELECT s."id", s."name", s."email", s."amount", s."seen_at", s."_tm_valid_from", NULL, true, false, s."_tm_row_hash", $1, s."_tm_version_key" FROM "dw"."_tm_stage_accounts" AS s WHERE s."_tm_op" IN ('insert', 'update');

-- scd2-retire-close-by-copy#5
INSERT INTO "dw"."_tm_ledger" ("pipeline", "run_id", "target_table", "boundary", "inserted", "updated", "deleted", "run_seq", "base_run_id", "read_to", "snapshot", "committed_at") VALUES ($1, $2, $3, CAST($4 AS TIMESTAMP), $5, $6, $7, $8, $9, $10, $11, CURRENT_TIMESTAMP);

-- scd2-mark-close-by-copy#1
INSERT INTO "dw"."dim_account" ("id", "name", "email", "amount", "seen_at", "_tm_valid_from", "_tm_valid_to", "_tm_is_current", "_tm_is_deleted", "_tm_row_hash", "_tm_run_id", "_tm_version_key") SELECT t."id", t."name", t."email", t."amount", t."seen_at", s."_tm_valid_from", NULL, true, true, t."_tm_row_hash", $1, s."_tm_version_key" FROM "dw"."dim_account" AS t, "dw"."_tm_stage_accounts" AS s WHERE t."id" = s."id" AND t."_tm_is_current" = true AND s."_tm_op" = 'delete';

-- scd2-mark-close-by-copy#2
INSERT INTO "dw"."dim_account" SELECT t.* REPLACE (s."_tm_valid_from" AS "_tm_valid_to", false AS "_tm_is_current") FROM "dw"."dim_account" AS t JOIN (SELECT "id", min("_tm_valid_from") AS "_tm_valid_from" FROM "dw"."_tm_stage_accounts" WHERE "_tm_op" IN ('insert', 'update', 'delete') GROUP BY "id") AS s ON t."id" = s."id" WHERE t."_tm_is_current" = true AND t."_tm_run_id" <> $1;

-- scd2-mark-close-by-copy#3
DELETE FROM "dw"."dim_account" AS t USING "dw"."_tm_stage_accounts" AS s WHERE t."id" = s."id" AND t."_tm_is_current" = true AND t."_tm_run_id" <> $1 AND s."_tm_op" IN ('insert', 'update', 'delete');

-- scd2-mark-close-by-copy#4
UPDATE "dw"."dim_account" AS t SET "email" = s."email", "name" = s."name", "amount" = s."amount", "seen_at" = s."seen_at", "_tm_row_hash" = s."_tm_row_hash" FROM "dw"."_tm_stage_accounts" AS s WHERE t."id" = s."id" AND t."_tm_is_current" = true AND s."_tm_op" = 'type1';

-- scd2-mark-close-by-copy#5
INSERT INTO "dw"."dim_account" ("id", "name", "email", "amount", "seen_at", "_tm_valid_from", "_tm_valid_to", "_tm_is_current", "_tm_is_deleted", "_tm_row_hash", "_tm_run_id", "_tm_version_key") SELECT s."id", s."name", s."email", s."amount", s."seen_at", s."_tm_valid_from", NULL, true, false, s."_tm_row_hash", $1, s."_tm_version_key" FROM "dw"."_tm_stage_accounts" AS s WHERE s."_tm_op" IN ('insert', 'update');

-- scd2-mark-close-by-copy#6
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
SELECT column_name AS name, data_type AS type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position;

-- current-count#1
SELECT count(*)::BIGINT AS n FROM "dw"."dim_account" WHERE "_tm_is_current" AND NOT "_tm_is_deleted";

-- as-of#1
SELECT "id", "name", "email", CAST("amount" AS VARCHAR) AS "amount", "seen_at" FROM "dw"."dim_account" WHERE "_tm_valid_from" <= CAST($1 AS TIMESTAMP) AND ("_tm_valid_to" IS NULL OR "_tm_valid_to" > CAST($1 AS TIMESTAMP)) AND "_tm_is_deleted" = false;

-- as-of-limited#1
SELECT "id", "name", "email", CAST("amount" AS VARCHAR) AS "amount", "seen_at" FROM "dw"."dim_account" WHERE "_tm_valid_from" <= CAST($1 AS TIMESTAMP) AND ("_tm_valid_to" IS NULL OR "_tm_valid_to" > CAST($1 AS TIMESTAMP)) AND "_tm_is_deleted" = false ORDER BY "id", "name" LIMIT $2;

-- as-of-count#1
SELECT COUNT(*) AS n FROM "dw"."dim_account" WHERE "_tm_valid_from" <= CAST($1 AS TIMESTAMP) AND ("_tm_valid_to" IS NULL OR "_tm_valid_to" > CAST($1 AS TIMESTAMP)) AND "_tm_is_deleted" = false;

-- key-history#1
SELECT "id", "name", "email", CAST("amount" AS VARCHAR) AS "amount", "seen_at", CASE WHEN "_tm_valid_from" <= CAST($1 AS TIMESTAMP) AND ("_tm_valid_to" IS NULL OR "_tm_valid_to" > CAST($1 AS TIMESTAMP)) AND "_tm_is_deleted" = false THEN 1 ELSE 0 END AS "_tm_at" FROM "dw"."dim_account" WHERE CAST("id" AS VARCHAR) = $2 AND CAST("name" AS VARCHAR) = $3 ORDER BY "_tm_valid_from", "_tm_is_deleted";
