-- create#1
IF SCHEMA_ID(N'dw') IS NULL EXEC(N'CREATE SCHEMA [dw]');

-- create#2
IF OBJECT_ID(N'[dw].[dim_account]', N'U') IS NULL CREATE TABLE [dw].[dim_account] ([id] int NULL, [name] nvarchar(4000) NULL, [email] nvarchar(4000) NULL, [amount] decimal(12,2) NULL, [seen_at] datetime2(6) NULL, [_tm_valid_from] datetime2(6) NULL, [_tm_valid_to] datetime2(6) NULL, [_tm_is_current] bit NULL, [_tm_is_deleted] bit NULL, [_tm_row_hash] binary(16) NULL, [_tm_run_id] varchar(64) NULL, [_tm_version_key] binary(16) NOT NULL, CONSTRAINT [pk_dim_account] PRIMARY KEY NONCLUSTERED ([_tm_version_key]) NOT ENFORCED) WITH (DISTRIBUTION = HASH([id]), CLUSTERED COLUMNSTORE INDEX);

-- create#3
IF OBJECT_ID(N'[dw].[_tm_ledger]', N'U') IS NULL CREATE TABLE [dw].[_tm_ledger] ([pipeline] nvarchar(128) NOT NULL, [run_id] varchar(64) NOT NULL, [target_table] nvarchar(300) NOT NULL, [boundary] datetime2(6) NOT NULL, [inserted] bigint NULL, [updated] bigint NULL, [deleted] bigint NULL, [committed_at] datetime2(6) NULL, CONSTRAINT [pk__tm_ledger] PRIMARY KEY NONCLUSTERED ([pipeline], [run_id]) NOT ENFORCED) WITH (DISTRIBUTION = ROUND_ROBIN, HEAP);

-- create#4
IF COL_LENGTH(N'[dw].[_tm_ledger]', N'run_seq') IS NULL ALTER TABLE [dw].[_tm_ledger] ADD [run_seq] bigint NULL;

-- create#5
IF COL_LENGTH(N'[dw].[_tm_ledger]', N'base_run_id') IS NULL ALTER TABLE [dw].[_tm_ledger] ADD [base_run_id] varchar(64) NULL;

-- create#6
IF COL_LENGTH(N'[dw].[_tm_ledger]', N'read_to') IS NULL ALTER TABLE [dw].[_tm_ledger] ADD [read_to] nvarchar(1000) NULL;

-- create#7
IF COL_LENGTH(N'[dw].[_tm_ledger]', N'snapshot') IS NULL ALTER TABLE [dw].[_tm_ledger] ADD [snapshot] nvarchar(1000) NULL;

-- create-hex-hashes#1
IF OBJECT_ID(N'[dw].[dim_account]', N'U') IS NULL CREATE TABLE [dw].[dim_account] ([id] int NULL, [name] nvarchar(4000) NULL, [email] nvarchar(4000) NULL, [amount] decimal(12,2) NULL, [seen_at] datetime2(6) NULL, [_tm_valid_from] datetime2(6) NULL, [_tm_valid_to] datetime2(6) NULL, [_tm_is_current] bit NULL, [_tm_is_deleted] bit NULL, [_tm_row_hash] varchar(64) NULL, [_tm_run_id] varchar(64) NULL, [_tm_version_key] varchar(64) NOT NULL, CONSTRAINT [pk_dim_account] PRIMARY KEY NONCLUSTERED ([_tm_version_key]) NOT ENFORCED) WITH (DISTRIBUTION = HASH([id]), CLUSTERED COLUMNSTORE INDEX);

-- evolve#1
IF SCHEMA_ID(N'dw') IS NULL EXEC(N'CREATE SCHEMA [dw]');

-- evolve#2
ALTER TABLE [dw].[dim_account] ADD [email] nvarchar(4000) NULL;

-- evolve#3
ALTER TABLE [dw].[dim_account] ALTER COLUMN [id] int NULL;

-- evolve#4
IF OBJECT_ID(N'[dw].[_tm_ledger]', N'U') IS NULL CREATE TABLE [dw].[_tm_ledger] ([pipeline] nvarchar(128) NOT NULL, [run_id] varchar(64) NOT NULL, [target_table] nvarchar(300) NOT NULL, [boundary] datetime2(6) NOT NULL, [inserted] bigint NULL, [updated] bigint NULL, [deleted] bigint NULL, [committed_at] datetime2(6) NULL, CONSTRAINT [pk__tm_ledger] PRIMARY KEY NONCLUSTERED ([pipeline], [run_id]) NOT ENFORCED) WITH (DISTRIBUTION = ROUND_ROBIN, HEAP);

-- evolve#5
IF COL_LENGTH(N'[dw].[_tm_ledger]', N'run_seq') IS NULL ALTER TABLE [dw].[_tm_ledger] ADD [run_seq] bigint NULL;

-- evolve#6
IF COL_LENGTH(N'[dw].[_tm_ledger]', N'base_run_id') IS NULL ALTER TABLE [dw].[_tm_ledger] ADD [base_run_id] varchar(64) NULL;

-- evolve#7
IF COL_LENGTH(N'[dw].[_tm_ledger]', N'read_to') IS NULL ALTER TABLE [dw].[_tm_ledger] ADD [read_to] nvarchar(1000) NULL;

-- evolve#8
IF COL_LENGTH(N'[dw].[_tm_ledger]', N'snapshot') IS NULL ALTER TABLE [dw].[_tm_ledger] ADD [snapshot] nvarchar(1000) NULL;

-- ledger-check#1
SELECT 1 AS present FROM [dw].[_tm_ledger] WHERE [pipeline] = @p1 AND [run_id] = @p2;

-- ledger-head#1
SELECT TOP 1 [run_id] AS run_id, [base_run_id] AS base_run_id, [run_seq] AS run_seq, [read_to] AS read_to, [snapshot] AS snapshot FROM [dw].[_tm_ledger] WHERE [pipeline] = @p1 ORDER BY COALESCE([run_seq], -1) DESC, [committed_at] DESC;

-- scd2-retire#1
UPDATE [dw].[dim_account] SET [_tm_valid_to] = s.[_tm_valid_from], [_tm_is_current] = 0 FROM [dw].[_tm_stage_accounts] AS s WHERE [dw].[dim_account].[id] = s.[id] AND [dw].[dim_account].[_tm_is_current] = 1 AND s.[_tm_op] IN ('insert', 'update', 'delete');

-- scd2-retire#2
UPDATE [dw].[dim_account] SET [email] = s.[email], [name] = s.[name], [amount] = s.[amount], [seen_at] = s.[seen_at], [_tm_row_hash] = s.[_tm_row_hash] FROM [dw].[_tm_stage_accounts] AS s WHERE [dw].[dim_account].[id] = s.[id] AND [dw].[dim_account].[_tm_is_current] = 1 AND s.[_tm_op] = 'type1';

-- scd2-retire#3
INSERT INTO [dw].[dim_account] ([id], [name], [email], [amount], [seen_at], [_tm_valid_from], [_tm_valid_to], [_tm_is_current], [_tm_is_deleted], [_tm_row_hash], [_tm_run_id], [_tm_version_key]) SELECT s.[id], s.[name], s.[email], s.[amount], s.[seen_at], s.[_tm_valid_from], NULL, 1, 0, s.[_tm_row_hash], @p1, s.[_tm_version_key] FROM [dw].[_tm_stage_accounts] AS s WHERE s.[_tm_op] IN ('insert', 'update');

-- scd2-retire#4
INSERT INTO [dw].[_tm_ledger] ([pipeline], [run_id], [target_table], [boundary], [inserted], [updated], [deleted], [run_seq], [base_run_id], [read_to], [snapshot], [committed_at]) VALUES (@p1, @p2, @p3, CAST(@p4 AS datetime2(6)), @p5, @p6, @p7, @p8, @p9, @p10, @p11, SYSUTCDATETIME());

-- scd2-mark#1
INSERT INTO [dw].[dim_account] ([id], [name], [email], [amount], [seen_at], [_tm_valid_from], [_tm_valid_to], [_tm_is_current], [_tm_is_deleted], [_tm_row_hash], [_tm_run_id], [_tm_version_key]) SELECT t.[id], t.[name], t.[email], t.[amount], t.[seen_at], s.[_tm_valid_from], NULL, 1, 1, t.[_tm_row_hash], @p1, s.[_tm_version_key] FROM [dw].[dim_account] AS t, [dw].[_tm_stage_accounts] AS s WHERE t.[id] = s.[id] AND t.[_tm_is_current] = 1 AND s.[_tm_op] = 'delete';

-- scd2-mark#2
UPDATE [dw].[dim_account] SET [_tm_valid_to] = s.[_tm_valid_from], [_tm_is_current] = 0 FROM [dw].[_tm_stage_accounts] AS s WHERE [dw].[dim_account].[id] = s.[id] AND [dw].[dim_account].[_tm_is_current] = 1 AND [dw].[dim_account].[_tm_run_id] <> @p1 AND s.[_tm_op] IN ('insert', 'update', 'delete');

-- scd2-mark#3
UPDATE [dw].[dim_account] SET [email] = s.[email], [name] = s.[name], [amount] = s.[amount], [seen_at] = s.[seen_at], [_tm_row_hash] = s.[_tm_row_hash] FROM [dw].[_tm_stage_accounts] AS s WHERE [dw].[dim_account].[id] = s.[id] AND [dw].[dim_account].[_tm_is_current] = 1 AND s.[_tm_op] = 'type1';

-- scd2-mark#4
INSERT INTO [dw].[dim_account] ([id], [name], [email], [amount], [seen_at], [_tm_valid_from], [_tm_valid_to], [_tm_is_current], [_tm_is_deleted], [_tm_row_hash], [_tm_run_id], [_tm_version_key]) SELECT s.[id], s.[name], s.[email], s.[amount], s.[seen_at], s.[_tm_valid_from], NULL, 1, 0, s.[_tm_row_hash], @p1, s.[_tm_version_key] FROM [dw].[_tm_stage_accounts] AS s WHERE s.[_tm_op] IN ('insert', 'update');

-- scd2-mark#5
INSERT INTO [dw].[_tm_ledger] ([pipeline], [run_id], [target_table], [boundary], [inserted], [updated], [deleted], [run_seq], [base_run_id], [read_to], [snapshot], [committed_at]) VALUES (@p1, @p2, @p3, CAST(@p4 AS datetime2(6)), @p5, @p6, @p7, @p8, @p9, @p10, @p11, SYSUTCDATETIME());

-- scd2-ignore#1
UPDATE [dw].[dim_account] SET [_tm_valid_to] = s.[_tm_valid_from], [_tm_is_current] = 0 FROM [dw].[_tm_stage_accounts] AS s WHERE [dw].[dim_account].[id] = s.[id] AND [dw].[dim_account].[_tm_is_current] = 1 AND s.[_tm_op] IN ('insert', 'update');

-- scd2-ignore#2
UPDATE [dw].[dim_account] SET [name] = s.[name], [email] = s.[email], [amount] = s.[amount], [seen_at] = s.[seen_at], [_tm_row_hash] = s.[_tm_row_hash] FROM [dw].[_tm_stage_accounts] AS s WHERE [dw].[dim_account].[id] = s.[id] AND [dw].[dim_account].[_tm_is_current] = 1 AND s.[_tm_op] = 'type1';

-- scd2-ignore#3
INSERT INTO [dw].[dim_account] ([id], [name], [email], [amount], [seen_at], [_tm_valid_from], [_tm_valid_to], [_tm_is_current], [_tm_is_deleted], [_tm_row_hash], [_tm_run_id], [_tm_version_key]) SELECT s.[id], s.[name], s.[email], s.[amount], s.[seen_at], s.[_tm_valid_from], NULL, 1, 0, s.[_tm_row_hash], @p1, s.[_tm_version_key] FROM [dw].[_tm_stage_accounts] AS s WHERE s.[_tm_op] IN ('insert', 'update');

-- scd2-ignore#4
INSERT INTO [dw].[_tm_ledger] ([pipeline], [run_id], [target_table], [boundary], [inserted], [updated], [deleted], [run_seq], [base_run_id], [read_to], [snapshot], [committed_at]) VALUES (@p1, @p2, @p3, CAST(@p4 AS datetime2(6)), @p5, @p6, @p7, @p8, @p9, @p10, @p11, SYSUTCDATETIME());

-- scd1-retire#1
UPDATE [dw].[dim_account] SET [name] = s.[name], [email] = s.[email], [amount] = s.[amount], [seen_at] = s.[seen_at], [_tm_valid_from] = s.[_tm_valid_from], [_tm_is_deleted] = 0, [_tm_row_hash] = s.[_tm_row_hash], [_tm_run_id] = @p1 FROM [dw].[_tm_stage_accounts] AS s WHERE [dw].[dim_account].[id] = s.[id] AND s.[_tm_op] IN ('update', 'type1', 'insert');

-- scd1-retire#2
DELETE FROM [dw].[dim_account] WHERE EXISTS (SELECT 1 FROM [dw].[_tm_stage_accounts] AS s WHERE [dw].[dim_account].[id] = s.[id] AND s.[_tm_op] = 'delete');

-- scd1-retire#3
INSERT INTO [dw].[dim_account] ([id], [name], [email], [amount], [seen_at], [_tm_valid_from], [_tm_valid_to], [_tm_is_current], [_tm_is_deleted], [_tm_row_hash], [_tm_run_id], [_tm_version_key]) SELECT s.[id], s.[name], s.[email], s.[amount], s.[seen_at], s.[_tm_valid_from], NULL, 1, 0, s.[_tm_row_hash], @p1, s.[_tm_version_key] FROM [dw].[_tm_stage_accounts] AS s WHERE s.[_tm_op] = 'insert' AND NOT EXISTS (SELECT 1 FROM [dw].[dim_account] AS t WHERE t.[id] = s.[id]);

-- scd1-retire#4
INSERT INTO [dw].[_tm_ledger] ([pipeline], [run_id], [target_table], [boundary], [inserted], [updated], [deleted], [run_seq], [base_run_id], [read_to], [snapshot], [committed_at]) VALUES (@p1, @p2, @p3, CAST(@p4 AS datetime2(6)), @p5, @p6, @p7, @p8, @p9, @p10, @p11, SYSUTCDATETIME());

-- scd1-mark#1
UPDATE [dw].[dim_account] SET [name] = s.[name], [email] = s.[email], [amount] = s.[amount], [seen_at] = s.[seen_at], [_tm_valid_from] = s.[_tm_valid_from], [_tm_is_deleted] = 0, [_tm_row_hash] = s.[_tm_row_hash], [_tm_run_id] = @p1 FROM [dw].[_tm_stage_accounts] AS s WHERE [dw].[dim_account].[id] = s.[id] AND s.[_tm_op] IN ('update', 'type1', 'insert');

-- scd1-mark#2
UPDATE [dw].[dim_account] SET [_tm_is_deleted] = 1, [_tm_run_id] = @p1 FROM [dw].[_tm_stage_accounts] AS s WHERE [dw].[dim_account].[id] = s.[id] AND s.[_tm_op] = 'delete';

-- scd1-mark#3
INSERT INTO [dw].[dim_account] ([id], [name], [email], [amount], [seen_at], [_tm_valid_from], [_tm_valid_to], [_tm_is_current], [_tm_is_deleted], [_tm_row_hash], [_tm_run_id], [_tm_version_key]) SELECT s.[id], s.[name], s.[email], s.[amount], s.[seen_at], s.[_tm_valid_from], NULL, 1, 0, s.[_tm_row_hash], @p1, s.[_tm_version_key] FROM [dw].[_tm_stage_accounts] AS s WHERE s.[_tm_op] = 'insert' AND NOT EXISTS (SELECT 1 FROM [dw].[dim_account] AS t WHERE t.[id] = s.[id]);

-- scd1-mark#4
INSERT INTO [dw].[_tm_ledger] ([pipeline], [run_id], [target_table], [boundary], [inserted], [updated], [deleted], [run_seq], [base_run_id], [read_to], [snapshot], [committed_at]) VALUES (@p1, @p2, @p3, CAST(@p4 AS datetime2(6)), @p5, @p6, @p7, @p8, @p9, @p10, @p11, SYSUTCDATETIME());

-- describe#1
SELECT c.[name] AS [name], CASE WHEN ty.[name] IN ('nvarchar', 'nchar') THEN ty.[name] + '(' + CASE WHEN c.[max_length] = -1 THEN 'max' ELSE CAST(c.[max_length] / 2 AS varchar(10)) END + ')' WHEN ty.[name] IN ('varchar', 'char', 'varbinary', 'binary') THEN ty.[name] + '(' + CASE WHEN c.[max_length] = -1 THEN 'max' ELSE CAST(c.[max_length] AS varchar(10)) END + ')' WHEN ty.[name] IN ('decimal', 'numeric') THEN ty.[name] + '(' + CAST(c.[precision] AS varchar(10)) + ',' + CAST(c.[scale] AS varchar(10)) + ')' WHEN ty.[name] IN ('datetime2', 'time', 'datetimeoffset') THEN ty.[name] + '(' + CAST(c.[scale] AS varchar(10)) + ')' ELSE ty.[name] END AS [type] FROM sys.columns AS c, sys.types AS ty WHERE c.[user_type_id] = ty.[user_type_id] AND c.[object_id] = OBJECT_ID(@p1) ORDER BY c.[column_id];

-- current-count#1
SELECT COUNT_BIG(*) AS n FROM [dw].[dim_account] WHERE [_tm_is_current] = 1 AND [_tm_is_deleted] = 0;

-- as-of#1
SELECT [id], [name], [email], CAST([amount] AS nvarchar(max)) AS [amount], [seen_at] FROM [dw].[dim_account] WHERE [_tm_valid_from] <= CAST(@p1 AS datetime2(6)) AND ([_tm_valid_to] IS NULL OR [_tm_valid_to] > CAST(@p1 AS datetime2(6))) AND [_tm_is_deleted] = 0;

-- as-of-limited#1
SELECT TOP (@p2) [id], [name], [email], CAST([amount] AS nvarchar(max)) AS [amount], [seen_at] FROM [dw].[dim_account] WHERE [_tm_valid_from] <= CAST(@p1 AS datetime2(6)) AND ([_tm_valid_to] IS NULL OR [_tm_valid_to] > CAST(@p1 AS datetime2(6))) AND [_tm_is_deleted] = 0 ORDER BY [id], [name];

-- as-of-count#1
SELECT COUNT(*) AS n FROM [dw].[dim_account] WHERE [_tm_valid_from] <= CAST(@p1 AS datetime2(6)) AND ([_tm_valid_to] IS NULL OR [_tm_valid_to] > CAST(@p1 AS datetime2(6))) AND [_tm_is_deleted] = 0;

-- key-history#1
SELECT [id], [name], [email], CAST([amount] AS nvarchar(max)) AS [amount], [seen_at], CASE WHEN [_tm_valid_from] <= CAST(@p1 AS datetime2(6)) AND ([_tm_valid_to] IS NULL OR [_tm_valid_to] > CAST(@p1 AS datetime2(6))) AND [_tm_is_deleted] = 0 THEN 1 ELSE 0 END AS [_tm_at] FROM [dw].[dim_account] WHERE CAST([id] AS nvarchar(max)) = @p2 AND CAST([name] AS nvarchar(max)) = @p3 ORDER BY [_tm_valid_from], [_tm_is_deleted];
