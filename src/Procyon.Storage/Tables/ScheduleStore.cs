using Npgsql;

namespace Procyon.Storage.Tables;

/// <summary>A leased row of a scheduled table: its BSATN, id, the time it was due and the end of the lease.</summary>
/// <param name="Cron">For a row scheduled by a cron expression: the expression.</param>
/// <param name="Attempts">Its runs that failed since it last ran well (see <see cref="RowEnds.Retry"/>).</param>
public sealed record ClaimedRow(byte[] Row, long ScheduledId, DateTime Due, DateTime LeasedUntil, string? Cron = null, int Attempts = 0)
{
    /// <summary>A cron row not yet moved to its first occurrence (<see cref="ScheduleStore.Unarmed"/>): it is not to run.</summary>
    public bool Unarmed => Cron is not null && Due == ScheduleStore.Unarmed;
}

/// <summary>What finishing rows does besides deleting one-shot rows and moving interval rows on.</summary>
/// <param name="Cron">The next occurrence of each cron row; one without is deleted (no occurrence left).</param>
/// <param name="Retry">Rows whose run failed and that run again at this time, their attempts counted, instead.</param>
public sealed record RowEnds(IReadOnlyDictionary<long, DateTime> Cron, IReadOnlyDictionary<long, DateTime> Retry);

/// <summary>A scheduled table as the due index names it, and when its earliest row is due.</summary>
public sealed record DueTable(string Database, string Table, DateTimeOffset Due);

/// <summary>
/// The SQL of scheduled tables: leasing, renewing and finishing their rows, and the server-wide
/// due index <c>procyon.due</c>, one row per scheduled table with the earliest due time of its
/// rows (leased rows count with their lease's end). Schedulers ask the index, in one query, when
/// to wake and which tables have rows due, so their cost follows the tables with due rows, not
/// every scheduled table there is.
/// <para>
/// Only the server writes the index, never a module's transaction: a trigger writing it would
/// make concurrent inserts into one scheduled table conflict on its row (serializable
/// transactions fail on a concurrent update) and hold it locked as long as a module's
/// transaction runs. Each write sets <c>next_due</c> to the table's earliest due time read
/// after the index row is locked, so writes of several servers end in the latest truth. What
/// lowers a table's due time reaches the index like this: leases, hand-backs and renewals
/// refresh it in their own statement; a module's insert or reschedule notifies every server
/// (the table's trigger, on commit), whose scheduler refreshes the table; finished runs refresh
/// it after their transaction commits; a scheduler that starts listening refreshes every table,
/// since notifications sent meanwhile are lost. A published table starts due at once
/// (<c>-infinity</c>), so its first look refreshes it.
/// </para>
/// <para>
/// Every refresh touches the scheduled table before it locks the index row, as a delete or a
/// clearing publish does (it drops the table, then its catalog row, whose foreign key removes the
/// index row): both take the locks in the same order and cannot deadlock. SQL readers have no
/// privilege on the <c>procyon</c> schema: they can neither read nor lock the index.
/// </para>
/// </summary>
public sealed class ScheduleStore(NpgsqlDataSource dataSource)
{
    /// <summary>The due time the trigger gives a cron row: the scheduler leases it at once and arms it (moves it to its first occurrence).</summary>
    public static readonly DateTime Unarmed = DateTime.UnixEpoch;

    /// <summary>Creates the index; part of the catalog's idempotent setup.</summary>
    internal const string CreateIndexSql = """
        CREATE TABLE IF NOT EXISTS procyon.due (
            db          text NOT NULL,
            tbl         text NOT NULL,
            next_due    timestamptz,
            PRIMARY KEY (db, tbl),
            FOREIGN KEY (db, tbl) REFERENCES procyon.tables (db, name) ON DELETE CASCADE
        );
        CREATE INDEX IF NOT EXISTS due_next_due ON procyon.due (next_due);
        """;

    /// <summary>
    /// Fills the index for scheduled tables it lacks (those with the host's due column): published
    /// before it existed, or written into the catalog by hand. At every start; it takes no DDL lock.
    /// </summary>
    internal const string FillIndexSql = $"""
        INSERT INTO procyon.due (db, tbl, next_due)
        SELECT t.db, t.name, '-infinity' FROM procyon.tables AS t
        JOIN pg_namespace AS n ON n.nspname = 'db_' || t.db
        JOIN pg_class AS c ON c.relnamespace = n.oid AND c.relname = t.name
        JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attname = '{Sql.DueColumn}' AND NOT a.attisdropped
        ON CONFLICT DO NOTHING;
        """;

    private const string IndexSql = "INSERT INTO procyon.due (db, tbl, next_due) VALUES (@db, @tbl, '-infinity') ON CONFLICT DO NOTHING";

    private const string Skip = "NOT (db || '/' || tbl = ANY(@skip))";

    private const string NextDueSql = $"SELECT db, tbl, next_due FROM procyon.due WHERE next_due IS NOT NULL AND {Skip} ORDER BY next_due LIMIT 1";

    private const string DueTablesSql = $"SELECT db, tbl, next_due FROM procyon.due WHERE next_due <= clock_timestamp() AND {Skip} ORDER BY next_due";

    /// <summary>How a scheduled table is named in the schedulers' lists of tables to skip: database names have no '/'.</summary>
    public static string KeyOf(string database, string table) => $"{database}/{table}";

    /// <summary>In a publish's transaction: a new scheduled table enters the index, due at once.</summary>
    internal static Task IndexAsync(DatabaseTransaction transaction, TableSchema table, CancellationToken cancellationToken) =>
        transaction.ExecuteAsync(IndexSql, cancellationToken, ("db", table.Database), ("tbl", table.Name));

    /// <summary>The scheduled table due first, but for those in <paramref name="skip"/>; null when none has rows.</summary>
    public async Task<DueTable?> NextDueAsync(IReadOnlyCollection<string> skip, CancellationToken cancellationToken) =>
        (await ReadDueAsync(NextDueSql, skip, cancellationToken)).FirstOrDefault();

    /// <summary>The scheduled tables with rows due now, earliest first, but for those in <paramref name="skip"/>.</summary>
    public Task<List<DueTable>> DueTablesAsync(IReadOnlyCollection<string> skip, CancellationToken cancellationToken) =>
        ReadDueAsync(DueTablesSql, skip, cancellationToken);

    private async Task<List<DueTable>> ReadDueAsync(string sql, IReadOnlyCollection<string> skip, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.AddWithValue("skip", skip.ToArray());
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var due = new List<DueTable>();
        while (await reader.ReadAsync(cancellationToken))
        {
            due.Add(new DueTable(reader.GetString(0), reader.GetString(1), reader.GetFieldValue<DateTimeOffset>(2)));
        }
        return due;
    }

    /// <summary>Sets the index's due time of a table from its rows (see the class's remarks); a module changed them, or runs finished.</summary>
    public async Task RefreshAsync(TableSchema table, CancellationToken cancellationToken)
    {
        await using var batch = dataSource.CreateBatch();
        // Takes the table's lock first, as a drop would; see the class's remarks.
        batch.BatchCommands.Add(new NpgsqlBatchCommand($"SELECT FROM {table.QualifiedName} LIMIT 0"));
        AddRefresh(batch, table);
        await batch.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// The statements that, after one that changed a table's due times in the same implicit
    /// transaction, bring its index row up to date: lock the row, then read the earliest due
    /// time in a snapshot taken after the lock, which sees every refresh before it.
    /// </summary>
    private static void AddRefresh(NpgsqlBatch batch, TableSchema table)
    {
        var lockRow = new NpgsqlBatchCommand("SELECT FROM procyon.due WHERE db = @db AND tbl = @tbl FOR UPDATE");
        var update = new NpgsqlBatchCommand($"UPDATE procyon.due SET next_due = (SELECT min({Due}) FROM {table.QualifiedName}) WHERE db = @db AND tbl = @tbl");
        foreach (var command in new[] { lockRow, update })
        {
            command.Parameters.AddWithValue("db", table.Database);
            command.Parameters.AddWithValue("tbl", table.Name);
            batch.BatchCommands.Add(command);
        }
    }

    /// <summary>
    /// Leases up to <paramref name="limit"/> due rows of a scheduled table in a statement of its
    /// own: each row's due time moves to the end of the lease, so no other server takes it unless
    /// the lease runs out first (its server died). Rows other claims hold are skipped. The index
    /// is refreshed in the same transaction.
    /// </summary>
    public async Task<List<ClaimedRow>> ClaimDueAsync(TableSchema table, TimeSpan lease, int limit, CancellationToken cancellationToken)
    {
        await using var batch = dataSource.CreateBatch();
        var claim = new NpgsqlBatchCommand(
            $"""
            UPDATE {table.QualifiedName} AS t SET {Due} = clock_timestamp() + @lease
            FROM (SELECT "scheduled_id", {Due} FROM {table.QualifiedName} WHERE {Due} <= clock_timestamp() ORDER BY {Due} LIMIT @limit FOR UPDATE SKIP LOCKED) AS was
            WHERE t."scheduled_id" = was."scheduled_id"
            RETURNING {string.Join(", ", table.Columns.Select(c => "t." + Sql.Quote(c.Name)))}, t."scheduled_id", was.{Due}, t.{Due}, t.scheduled_at->>'Cron', t.{Sql.Quote(Sql.AttemptsColumn)}
            """);
        claim.Parameters.AddWithValue("lease", lease);
        claim.Parameters.AddWithValue("limit", limit);
        batch.BatchCommands.Add(claim);
        AddRefresh(batch, table);
        var rows = new List<ClaimedRow>();
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        var columns = table.Columns.Count;
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(new ClaimedRow(DatabaseTransaction.ReadRow(table, reader), reader.GetInt64(columns), reader.GetDateTime(columns + 1), reader.GetDateTime(columns + 2), reader.IsDBNull(columns + 3) ? null : reader.GetString(columns + 3), reader.GetInt32(columns + 4)));
        }
        while (await reader.NextResultAsync(cancellationToken))
        {
        }
        return rows;
    }

    /// <summary>
    /// Moves the due time of rows still under the leases this server set (due at their
    /// <see cref="ClaimedRow.LeasedUntil"/>) to <paramref name="lease"/> from now: a renewal, or with
    /// zero a hand-back that makes them due at once. Returns the lease end of each row still
    /// this server's: the new one, or, for a row another transaction has locked (which it skips
    /// rather than waits for), the one it had. A row is missing when its lease was lost (deleted,
    /// rescheduled, or claimed elsewhere). The index is refreshed in the same transaction.
    /// </summary>
    public async Task<Dictionary<long, DateTime>> MoveLeasesAsync(TableSchema table, IReadOnlyList<ClaimedRow> leased, TimeSpan lease, CancellationToken cancellationToken)
    {
        await using var batch = dataSource.CreateBatch();
        var move = new NpgsqlBatchCommand(
            $"""
            WITH mine AS (SELECT * FROM {Mine}),
            moved AS (
                UPDATE {table.QualifiedName} AS t SET {Due} = clock_timestamp() + @lease
                FROM (SELECT s."scheduled_id" FROM {table.QualifiedName} AS s JOIN mine ON s."scheduled_id" = mine.id AND s.{Due} = mine.leased
                      FOR UPDATE OF s SKIP LOCKED) AS free
                WHERE t."scheduled_id" = free."scheduled_id"
                RETURNING t."scheduled_id", t.{Due})
            SELECT "scheduled_id", {Due} FROM moved
            UNION ALL
            SELECT mine.id, mine.leased FROM mine
            WHERE NOT EXISTS (SELECT FROM moved WHERE moved."scheduled_id" = mine.id)
              AND EXISTS (SELECT FROM {table.QualifiedName} AS t WHERE t."scheduled_id" = mine.id AND t.{Due} = mine.leased)
            """);
        AddLeases(move.Parameters, leased);
        move.Parameters.AddWithValue("lease", lease);
        batch.BatchCommands.Add(move);
        AddRefresh(batch, table);
        var moved = new Dictionary<long, DateTime>();
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            moved[reader.GetInt64(0)] = reader.GetDateTime(1);
        }
        while (await reader.NextResultAsync(cancellationToken))
        {
        }
        return moved;
    }

    /// <summary>
    /// How many rows a scheduled table holds (counted up to <paramref name="cap"/>, so a huge
    /// table costs no more than that) and when the earliest is due (a leased row at its lease's
    /// end); for the console. A table another transaction has locked whole fails it after a second.
    /// </summary>
    public async Task<(long Pending, DateTimeOffset? NextDue)> PendingAsync(TableSchema table, int cap, CancellationToken cancellationToken)
    {
        await using var batch = dataSource.CreateBatch();
        batch.BatchCommands.Add(new NpgsqlBatchCommand("SET LOCAL lock_timeout = 1000"));
        var count = new NpgsqlBatchCommand($"SELECT (SELECT count(*) FROM (SELECT FROM {table.QualifiedName} LIMIT @cap) AS capped), (SELECT min({Due}) FROM {table.QualifiedName})");
        count.Parameters.AddWithValue("cap", cap);
        batch.BatchCommands.Add(count);
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetFieldValue<DateTimeOffset>(1));
    }

    /// <summary>Wakes every server's scheduler, as the due-time trigger does: rows were handed back and are due now.</summary>
    public async Task WakeSchedulersAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand($"SELECT pg_notify('{Sql.ScheduleChannel}', '')");
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Locks the leased rows still under this server's leases until <paramref name="transaction"/>
    /// ends, so that neither a renewal nor another server's claim moves them while the transaction
    /// runs them, however long it takes. Returns the ids it locked: the others' leases were lost,
    /// or another transaction held them through every try. A row another transaction holds is
    /// skipped rather than waited for, so a module holding its own scheduled rows delays only
    /// them; it is tried again a few times over <see cref="BusyRetries"/> because most holders are
    /// gone within a millisecond (another worker's claim locks rows it looks at for its one
    /// statement), and a row given up waits for its lease to end. A table another transaction
    /// has locked whole (a clearing publish, or a hand-made <c>LOCK</c>) fails the statement after
    /// <paramref name="lockTimeout"/>, so the batch gives up and its table backs off, rather than
    /// hold its worker until the transaction's deadline.
    /// </summary>
    public static async Task<HashSet<long>> LockLeasedAsync(DatabaseTransaction transaction, TableSchema table, IReadOnlyList<ClaimedRow> leased, TimeSpan lockTimeout, CancellationToken cancellationToken)
    {
        var locked = new HashSet<long>();
        var left = leased;
        foreach (var pause in BusyRetries.Prepend(TimeSpan.Zero))
        {
            await Task.Delay(pause, cancellationToken);
            var busy = await TryLockLeasedAsync(transaction, table, left, locked, lockTimeout, cancellationToken);
            if (busy.Count == 0)
            {
                break;
            }
            left = left.Where(row => busy.Contains(row.ScheduledId)).ToList();
        }
        return locked;
    }

    /// <summary>The pauses before each further try to lock leased rows another transaction holds.</summary>
    private static readonly TimeSpan[] BusyRetries = [TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(5), TimeSpan.FromMilliseconds(25)];

    /// <summary>Locks what it can of <paramref name="leased"/> into <paramref name="locked"/>; returns the ids still this server's that another transaction holds.</summary>
    private static async Task<HashSet<long>> TryLockLeasedAsync(DatabaseTransaction transaction, TableSchema table, IReadOnlyList<ClaimedRow> leased, HashSet<long> locked, TimeSpan lockTimeout, CancellationToken cancellationToken)
    {
        // Only for this statement: the module's own statements after it wait as they always do.
        await using var command = transaction.CreateCommand(
            $"""
            SET LOCAL lock_timeout = {(long)lockTimeout.TotalMilliseconds};
            WITH mine AS (SELECT * FROM {Mine}),
            locked AS (
                SELECT t."scheduled_id" FROM {table.QualifiedName} AS t JOIN mine ON t."scheduled_id" = mine.id AND t.{Due} = mine.leased
                FOR UPDATE OF t SKIP LOCKED)
            SELECT "scheduled_id", true FROM locked
            UNION ALL
            SELECT mine.id, false FROM mine
            WHERE NOT EXISTS (SELECT FROM locked WHERE locked."scheduled_id" = mine.id)
              AND EXISTS (SELECT FROM {table.QualifiedName} AS t WHERE t."scheduled_id" = mine.id AND t.{Due} = mine.leased);
            SET LOCAL lock_timeout = DEFAULT
            """);
        AddLeases(command.Parameters, leased);
        var busy = new HashSet<long>();
        await DatabaseTransaction.Translate(async () =>
        {
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                (reader.GetBoolean(1) ? locked : busy).Add(reader.GetInt64(0));
            }
        });
        return busy;
    }

    /// <summary>
    /// In <paramref name="transaction"/>, after runs: deletes one-shot rows, and moves interval
    /// rows to their next time. With <paramref name="fromDue"/> the next time counts from the one
    /// just due (no drift, skipping missed ones); otherwise from now (after a procedure's run).
    /// Cron rows move to their time in <see cref="RowEnds.Cron"/> (the host parses cron
    /// expressions), or are deleted when it has none for them (no occurrence is left). Rows in
    /// <see cref="RowEnds.Retry"/> move to their retry's time instead, their attempts counted;
    /// the others' attempts start again from 0.
    /// Returns the ids it finished: a row is missing when its lease was lost (deleted,
    /// rescheduled, or claimed again elsewhere after the lease ran out). The caller refreshes the
    /// index once the transaction committed: a module's serializable transaction must not write
    /// the index row other servers write too.
    /// </summary>
    public static async Task<HashSet<long>> FinishAsync(DatabaseTransaction transaction, TableSchema table, IReadOnlyList<ClaimedRow> claimed, bool fromDue, RowEnds ends, CancellationToken cancellationToken)
    {
        const string Seconds = "greatest((t.scheduled_at->>'Interval')::numeric / 1000000, 0.001)";
        var next = fromDue
            ? $"mine.due + (floor(extract(epoch FROM clock_timestamp() - mine.due) / {Seconds}) + 1) * {Seconds} * interval '1 second'"
            : $"clock_timestamp() + {Seconds} * interval '1 second'";
        await using var command = transaction.CreateCommand(
            $"""
            WITH mine AS (SELECT * FROM unnest(@ids, @leased, @due, @next, @retry) AS mine(id, leased, due, next, retry)),
            retried AS (
                UPDATE {table.QualifiedName} AS t SET {Due} = mine.retry, {Attempts} = t.{Attempts} + 1 FROM mine
                WHERE t."scheduled_id" = mine.id AND t.{Due} = mine.leased AND mine.retry IS NOT NULL
                RETURNING t."scheduled_id"),
            gone AS (
                DELETE FROM {table.QualifiedName} AS t USING mine
                WHERE t."scheduled_id" = mine.id AND t.{Due} = mine.leased AND mine.retry IS NULL
                  AND (t.scheduled_at ? 'Time' OR (t.scheduled_at ? 'Cron' AND mine.next IS NULL))
                RETURNING t."scheduled_id"),
            moved AS (
                UPDATE {table.QualifiedName} AS t SET {Due} = CASE WHEN t.scheduled_at ? 'Cron' THEN mine.next ELSE {next} END, {Attempts} = 0 FROM mine
                WHERE t."scheduled_id" = mine.id AND t.{Due} = mine.leased AND mine.retry IS NULL
                  AND (t.scheduled_at ? 'Interval' OR (t.scheduled_at ? 'Cron' AND mine.next IS NOT NULL))
                RETURNING t."scheduled_id")
            SELECT "scheduled_id" FROM gone UNION ALL SELECT "scheduled_id" FROM moved UNION ALL SELECT "scheduled_id" FROM retried
            """);
        AddLeases(command.Parameters, claimed);
        command.Parameters.AddWithValue("next", NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.TimestampTz, TimesOf(claimed, ends.Cron));
        command.Parameters.AddWithValue("retry", NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.TimestampTz, TimesOf(claimed, ends.Retry));
        return await DatabaseTransaction.Translate(async () =>
        {
            var ids = new HashSet<long>();
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                ids.Add(reader.GetInt64(0));
            }
            return ids;
        });
    }

    private static void AddLeases(NpgsqlParameterCollection parameters, IReadOnlyList<ClaimedRow> leased)
    {
        parameters.AddWithValue("ids", leased.Select(c => c.ScheduledId).ToArray());
        parameters.AddWithValue("leased", leased.Select(c => c.LeasedUntil).ToArray());
        parameters.AddWithValue("due", leased.Select(c => c.Due).ToArray());
    }

    private static DateTime?[] TimesOf(IReadOnlyList<ClaimedRow> rows, IReadOnlyDictionary<long, DateTime> times) =>
        rows.Select(row => times.TryGetValue(row.ScheduledId, out var at) ? at : (DateTime?)null).ToArray();

    private static string Due => Sql.Quote(Sql.DueColumn);

    private static string Attempts => Sql.Quote(Sql.AttemptsColumn);

    /// <summary>The leased rows a statement works on, as the relation <c>mine(id, leased, due)</c>.</summary>
    private const string Mine = "unnest(@ids, @leased, @due) AS mine(id, leased, due)";
}
