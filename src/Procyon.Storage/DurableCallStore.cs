using Npgsql;

namespace Procyon.Storage;

/// <summary>A procedure call asleep in Postgres: who made it, on what, and its suspended state.</summary>
/// <param name="Sha256">The SHA-256 of the module code it runs on (the rewrite the server runs, whose stack its snapshot holds).</param>
/// <param name="Snapshot">The suspended instance (memory, globals, the call's arguments), as the runtime wrote it.</param>
/// <param name="ScheduledTable">For a scheduled run: the scheduled table whose row it runs (its scheduler wakes it, not the durable calls' claims).</param>
/// <param name="ScheduledId">For a scheduled run: the row's <c>scheduled_id</c>.</param>
public sealed record SleepingCall(
    Guid Id, string Database, string Sha256, string Function, string Caller, string Origin, DateTimeOffset StartedAt, DateTimeOffset WakeAt, byte[] Snapshot,
    string? ScheduledTable = null, long? ScheduledId = null);

/// <summary>A kept call as <c>GET /v1/calls/{id}</c> shows it: running, asleep, or finished with its result.</summary>
/// <param name="Status"><c>running</c>, <c>sleeping</c>, or how it ended: <c>ok</c>, <c>error</c>, <c>timeout</c>.</param>
/// <param name="Value">The return value as JSON text, when the call ended well.</param>
/// <param name="Failure">Why it failed (the runtime's failure name), when it ended so.</param>
/// <param name="RequestSha256">For a call made with an idempotency key: what it was asked (function and arguments), hashed.</param>
public sealed record StoredCall(
    Guid Id, string Database, string Function, string Caller, string Status, string? Value, string? Error, DateTimeOffset StartedAt, DateTimeOffset? FinishedAt, DateTimeOffset? WakeAt,
    string? Failure = null, string? RequestSha256 = null)
{
    /// <summary>Whether it has not ended yet.</summary>
    public bool InFlight => Status is "running" or "sleeping";
}

/// <summary>How a kept call ended, as <c>procyon.calls</c> records it.</summary>
public sealed record CallEnd(Guid Id, string Database, string Function, string Caller, DateTimeOffset StartedAt, string Status, string? Failure, string? Value, string? Error);

/// <summary>
/// The SQL of durable calls: a procedure sleeping longer than the threshold is written to
/// <c>procyon.sleeping_calls</c>, leased by the server holding it in memory (renewed while it
/// lives, handed back when it stops), and taken over by another server once the lease ends; a
/// finished durable call moves to <c>procyon.calls</c> with its result, kept for a retention time.
/// </summary>
public sealed class DurableCallStore(NpgsqlDataSource dataSource)
{
    internal const string CreateSql = """
        CREATE TABLE IF NOT EXISTS procyon.sleeping_calls (
            id          uuid PRIMARY KEY,
            db          text NOT NULL,
            sha256      text NOT NULL,
            fn          text NOT NULL,
            caller      text NOT NULL,
            origin      text NOT NULL,
            started_at  timestamptz NOT NULL,
            wake_at     timestamptz NOT NULL,
            snapshot    bytea NOT NULL,
            holder      text NOT NULL,
            lease_until timestamptz NOT NULL
        );
        CREATE INDEX IF NOT EXISTS sleeping_calls_lease ON procyon.sleeping_calls (lease_until);
        CREATE INDEX IF NOT EXISTS sleeping_calls_holder ON procyon.sleeping_calls (holder);
        CREATE TABLE IF NOT EXISTS procyon.calls (
            id          uuid PRIMARY KEY,
            db          text NOT NULL,
            fn          text NOT NULL,
            caller      text NOT NULL,
            status      text NOT NULL,
            value       text,
            error       text,
            started_at  timestamptz NOT NULL,
            finished_at timestamptz
        );
        ALTER TABLE procyon.calls ALTER COLUMN finished_at DROP NOT NULL;
        ALTER TABLE procyon.calls ADD COLUMN IF NOT EXISTS failure text;
        ALTER TABLE procyon.calls ADD COLUMN IF NOT EXISTS idem_key text;
        ALTER TABLE procyon.calls ADD COLUMN IF NOT EXISTS request_sha256 text;
        ALTER TABLE procyon.calls ADD COLUMN IF NOT EXISTS holder text;
        ALTER TABLE procyon.calls ADD COLUMN IF NOT EXISTS lease_until timestamptz;
        CREATE INDEX IF NOT EXISTS calls_finished ON procyon.calls (finished_at);
        CREATE INDEX IF NOT EXISTS calls_running ON procyon.calls (lease_until) WHERE status = 'running';
        CREATE UNIQUE INDEX IF NOT EXISTS calls_key ON procyon.calls (caller, db, idem_key) WHERE idem_key IS NOT NULL;
        CREATE INDEX IF NOT EXISTS sleeping_calls_db ON procyon.sleeping_calls (db, wake_at);
        CREATE INDEX IF NOT EXISTS sleeping_calls_sha256 ON procyon.sleeping_calls (sha256);
        ALTER TABLE procyon.sleeping_calls ADD COLUMN IF NOT EXISTS scheduled_table text;
        ALTER TABLE procyon.sleeping_calls ADD COLUMN IF NOT EXISTS scheduled_id bigint;
        CREATE UNIQUE INDEX IF NOT EXISTS sleeping_calls_scheduled_row ON procyon.sleeping_calls (db, scheduled_table, scheduled_id) WHERE scheduled_id IS NOT NULL;
        CREATE TABLE IF NOT EXISTS procyon.kept_code (
            sha256      text PRIMARY KEY,
            prepared    bytea NOT NULL
        );
        CREATE TABLE IF NOT EXISTS procyon.kept_versions (
            db          text NOT NULL,
            sha256      text NOT NULL,
            owner       text,
            replaced_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (db, sha256)
        );
        """;

    /// <summary>
    /// Keeps the code of the databases in <c>old(name, owner, prepared, hash)</c>, which is being
    /// replaced: once by its SHA-256 (many databases may run the same), and as a version of each
    /// database and its owner, for the calls asleep on it to wake on.
    /// </summary>
    private const string KeepOld = """
        code AS (INSERT INTO procyon.kept_code (sha256, prepared) SELECT DISTINCT ON (hash) hash, prepared FROM old ON CONFLICT (sha256) DO NOTHING),
        kept AS (
            INSERT INTO procyon.kept_versions (db, sha256, owner) SELECT name, hash, owner FROM old
            ON CONFLICT (db, sha256) DO UPDATE SET owner = excluded.owner, replaced_at = now())
        """;

    /// <summary>The catalog rows <see cref="KeepOld"/> keeps the code of, as <c>old</c>, once a condition on them follows.</summary>
    private const string OldWhere = "SELECT name, owner, prepared, encode(sha256(prepared), 'hex') AS hash FROM procyon.databases WHERE";

    /// <summary>Before the code of database <c>@name</c> is replaced with <c>@prepared</c>: keeps the code it ran (see <see cref="KeepOld"/>).</summary>
    public const string RetireSql = $"""
        WITH old AS ({OldWhere} name = @name AND prepared <> @prepared),
        {KeepOld}
        SELECT;
        """;

    /// <summary>The quick rewrite of <c>@wasm</c> (hashed <c>@sha256</c>) being replaced by the optimized one: keeps it (see <see cref="KeepOld"/>); a CTE.</summary>
    public const string RetireQuickCte = $"""
        old AS ({OldWhere} sha256 = @sha256 AND wasm = @wasm AND NOT optimized),
        {KeepOld}
        """;

    /// <summary>A version's code, only for the database and owner that ran it.</summary>
    private const string VersionSql = """
        SELECT c.prepared FROM procyon.kept_versions v JOIN procyon.kept_code c ON c.sha256 = v.sha256
        WHERE v.db = @db AND v.sha256 = @sha256 AND v.owner IS NOT DISTINCT FROM @owner
        """;

    /// <summary>A kept call starting: claims its idempotency key, if any (nothing is inserted when another call holds it).</summary>
    private const string StartSql = """
        INSERT INTO procyon.calls (id, db, fn, caller, status, idem_key, request_sha256, started_at, holder, lease_until)
        VALUES (@id, @db, @fn, @caller, 'running', @key, @request_sha256, @started_at, @holder, now() + @lease)
        ON CONFLICT (caller, db, idem_key) WHERE idem_key IS NOT NULL DO NOTHING
        RETURNING id
        """;

    /// <summary>Kept calls still running on a server that stopped renewing them, and not asleep in Postgres, ended for good.</summary>
    private static readonly string ReapSql = $"""
        UPDATE procyon.calls c SET status = 'error', failure = 'Unavailable', finished_at = now(), holder = NULL, lease_until = NULL,
            error = 'the server running the call stopped before the call ended (it may have done part of its work)'
        FROM {InIdOrder("procyon.calls", "status = 'running' AND lease_until < now() AND NOT EXISTS (SELECT 1 FROM procyon.sleeping_calls s WHERE s.id = calls.id)")}
        WHERE c.id = mine.id
        """;

    /// <summary>
    /// Written only while the database is still the one the call runs on (same name, same owner):
    /// a call that first sleeps after its database was deleted, maybe claimed by someone else since,
    /// must never be woken there.
    /// </summary>
    private const string SaveSql = """
        INSERT INTO procyon.sleeping_calls (id, db, sha256, fn, caller, origin, started_at, wake_at, snapshot, holder, lease_until, scheduled_table, scheduled_id)
        SELECT @id::uuid, @db::text, @sha256::text, @fn::text, @caller::text, @origin::text, @started_at::timestamptz, @wake_at::timestamptz, @snapshot::bytea,
            @holder::text, now() + @lease::interval, @scheduled_table::text, @scheduled_id::bigint
        WHERE EXISTS (SELECT 1 FROM procyon.databases d WHERE d.name = @db::text AND d.owner IS NOT DISTINCT FROM @owner::text)
        ON CONFLICT (id) DO UPDATE SET wake_at = excluded.wake_at, snapshot = excluded.snapshot, lease_until = excluded.lease_until
        WHERE procyon.sleeping_calls.holder = excluded.holder
        """;

    /// <summary>
    /// Every statement that changes many rows of one table locks them in the order of their ids
    /// (<c>ORDER BY id FOR UPDATE</c>), so that two of them, grouped ends and a renewal say, never
    /// wait for each other's rows: Postgres would end one of them as a deadlock.
    /// </summary>
    private static string InIdOrder(string table, string condition) => $"(SELECT id FROM {table} WHERE {condition} ORDER BY id FOR UPDATE) AS mine";

    private static readonly string HoldSql =
        $"UPDATE procyon.sleeping_calls s SET lease_until = now() + @lease FROM {InIdOrder("procyon.sleeping_calls", "id = ANY(@ids) AND holder = @holder")} WHERE s.id = mine.id RETURNING s.id";

    private static readonly string RenewSql = $"""
        UPDATE procyon.sleeping_calls s SET lease_until = now() + @lease FROM {InIdOrder("procyon.sleeping_calls", "holder = @holder")} WHERE s.id = mine.id;
        UPDATE procyon.calls c SET lease_until = now() + @lease FROM {InIdOrder("procyon.calls", "holder = @holder AND status = 'running'")} WHERE c.id = mine.id;
        """;

    private const string ReleaseSql = "UPDATE procyon.sleeping_calls SET holder = '', lease_until = now() + @delay WHERE id = @id AND holder = @holder";

    /// <summary>Scheduled runs are not handed back here: their rows' leases are, and their scheduler resumes them.</summary>
    private static readonly string HandBackSql =
        $"UPDATE procyon.sleeping_calls s SET lease_until = '-infinity' FROM {InIdOrder("procyon.sleeping_calls", "holder = @holder AND scheduled_id IS NULL")} WHERE s.id = mine.id";

    private const string ClaimSql = $$"""
        UPDATE procyon.sleeping_calls s SET holder = @holder, lease_until = greatest(s.wake_at, now()) + @lease
        FROM (SELECT id FROM procyon.sleeping_calls
              WHERE lease_until < now() AND wake_at < now() + @lookahead AND scheduled_id IS NULL
              ORDER BY wake_at LIMIT @limit FOR UPDATE SKIP LOCKED) due
        WHERE s.id = due.id
        RETURNING {{SleepingCallColumns}}
        """;

    private const string SleepingCallColumns = "s.id, s.db, s.sha256, s.fn, s.caller, s.origin, s.started_at, s.wake_at, s.snapshot, s.scheduled_table, s.scheduled_id";

    /// <summary>
    /// Takes over the snapshots of scheduled runs whose rows this server's scheduler just leased:
    /// the row's lease, not the snapshot's, says whose run it is (it ran out, so its server died or stopped).
    /// </summary>
    private const string TakeScheduledSql = $"""
        UPDATE procyon.sleeping_calls s SET holder = @holder, lease_until = now() + @lease
        WHERE s.db = @db AND s.scheduled_table = @tbl AND s.scheduled_id = ANY(@ids)
        RETURNING {SleepingCallColumns}
        """;

    /// <summary>
    /// Records how a call ended: drops its snapshot if this server holds it, and writes (or
    /// completes) its row in <c>procyon.calls</c> when it was asleep here or is kept anyway.
    /// </summary>
    private const string FinishSql = """
        WITH ends AS (
            SELECT * FROM unnest(@ids, @dbs, @fns, @callers, @started_ats, @statuses, @failures, @values, @errors, @kept)
                AS e(id, db, fn, caller, started_at, status, failure, value, error, kept)),
        mine AS (SELECT s.id FROM procyon.sleeping_calls s JOIN ends ON s.id = ends.id WHERE s.holder = @holder ORDER BY s.id FOR UPDATE OF s),
        slept AS (DELETE FROM procyon.sleeping_calls s USING mine WHERE s.id = mine.id RETURNING s.id)
        INSERT INTO procyon.calls (id, db, fn, caller, status, failure, value, error, started_at, finished_at)
        SELECT id, db, fn, caller, status, failure, value, error, started_at, now() FROM ends
        WHERE kept OR EXISTS (SELECT 1 FROM slept WHERE slept.id = ends.id)
        ORDER BY id
        ON CONFLICT (id) DO UPDATE SET status = excluded.status, failure = excluded.failure, value = excluded.value,
            error = excluded.error, finished_at = excluded.finished_at, holder = NULL, lease_until = NULL
        WHERE procyon.calls.status = 'running'
        """;

    private const string CallColumns = """
        c.id, c.db, c.fn, c.caller, CASE WHEN s.id IS NULL THEN c.status ELSE 'sleeping' END, c.value, c.error, c.started_at, c.finished_at, s.wake_at, c.failure, c.request_sha256
        FROM procyon.calls c LEFT JOIN procyon.sleeping_calls s ON s.id = c.id
        """;

    private const string SleepingColumns = """
        s.id, s.db, s.fn, s.caller, 'sleeping', NULL, NULL, s.started_at, NULL::timestamptz, s.wake_at, NULL, NULL FROM procyon.sleeping_calls s
        """;

    private const string FindSql = $"""
        SELECT {CallColumns} WHERE c.id = @id
        UNION ALL
        SELECT {SleepingColumns} WHERE s.id = @id AND NOT EXISTS (SELECT 1 FROM procyon.calls c WHERE c.id = @id)
        """;

    private const string FindByKeySql = $"SELECT {CallColumns} WHERE c.caller = @caller AND c.db = @db AND c.idem_key = @key";

    private const string ListSql = $"SELECT {SleepingColumns} WHERE s.db = @db ORDER BY s.wake_at LIMIT @limit";

    /// <summary>The LISTEN/NOTIFY channel that tells every server a call was cancelled (payload: its id).</summary>
    public const string CancelsChannel = "procyon_cancels";

    /// <summary>
    /// Cancels a kept or sleeping call that has not ended (<c>@id</c>), or every call of a database
    /// asleep in Postgres (<c>@db</c>; the other is null): its kept row ends as <c>cancelled</c> (or
    /// one is written for a call not kept otherwise), its snapshot goes, and every server hears of
    /// it; returns how many calls it cancelled.
    /// </summary>
    private const string CancelSql = $$"""
        WITH mine AS (SELECT id FROM procyon.sleeping_calls WHERE id = @id OR db = @db ORDER BY id FOR UPDATE),
        slept AS (DELETE FROM procyon.sleeping_calls s USING mine WHERE s.id = mine.id RETURNING s.id, s.db, s.fn, s.caller, s.started_at),
        kept AS (
            UPDATE procyon.calls c SET status = 'cancelled', failure = @failure, error = @error, finished_at = now(), holder = NULL, lease_until = NULL
            FROM (SELECT id FROM procyon.calls WHERE (id = @id OR id IN (SELECT id FROM slept)) AND status = 'running' ORDER BY id FOR UPDATE) k
            WHERE c.id = k.id
            RETURNING c.id),
        written AS (
            INSERT INTO procyon.calls (id, db, fn, caller, status, failure, error, started_at, finished_at)
            SELECT id, db, fn, caller, 'cancelled', @failure, @error, started_at, now() FROM slept WHERE NOT EXISTS (SELECT 1 FROM kept WHERE kept.id = slept.id)
            ORDER BY id
            ON CONFLICT (id) DO NOTHING
            RETURNING id),
        cancelled AS (SELECT id FROM kept UNION SELECT id FROM written)
        SELECT count(*) FROM cancelled, LATERAL (SELECT pg_notify('{{CancelsChannel}}', cancelled.id::text)) notified
        """;

    private static readonly string DropSql = $"""
        DELETE FROM procyon.sleeping_calls s USING {InIdOrder("procyon.sleeping_calls", "db = @db")} WHERE s.id = mine.id;
        DELETE FROM procyon.calls c USING {InIdOrder("procyon.calls", "db = @db")} WHERE c.id = mine.id;
        DELETE FROM procyon.kept_versions WHERE db = @db;
        """;

    /// <summary>
    /// Forgets finished calls past their retention; snapshots of scheduled runs that no server has
    /// held for a day (their row was deleted while their server was down, so no scheduler resumes
    /// them); replaced versions that no sleeping call needs, once replaced a day ago (time enough
    /// for any call still in memory on one to sleep) or when the database has eight newer ones
    /// (a database republished in a loop keeps no more); and code no version needs.
    /// </summary>
    private const string ForgetSql = """
        DELETE FROM procyon.calls WHERE status <> 'running' AND finished_at < now() - @retention;
        DELETE FROM procyon.sleeping_calls WHERE scheduled_id IS NOT NULL AND lease_until < now() - interval '1 day';
        DELETE FROM procyon.kept_versions v
        WHERE NOT EXISTS (SELECT 1 FROM procyon.sleeping_calls s WHERE s.db = v.db AND s.sha256 = v.sha256)
          AND (v.replaced_at < now() - interval '1 day'
               OR (SELECT count(*) FROM procyon.kept_versions w WHERE w.db = v.db AND w.replaced_at > v.replaced_at) >= 8);
        DELETE FROM procyon.kept_code c WHERE NOT EXISTS (SELECT 1 FROM procyon.kept_versions v WHERE v.sha256 = c.sha256);
        """;

    /// <summary>Writes (or rewrites, for a later sleep of the same call) a sleeping call held by <paramref name="holder"/>; false when its database is gone or another owner's.</summary>
    /// <param name="owner">The owner of the database the call runs on.</param>
    public async Task<bool> SaveAsync(SleepingCall call, string? owner, string holder, TimeSpan lease, CancellationToken cancellationToken) =>
        await ExecuteAsync(SaveSql, cancellationToken, ("owner", (object?)owner ?? DBNull.Value),
            ("id", call.Id), ("db", call.Database), ("sha256", call.Sha256), ("fn", call.Function), ("caller", call.Caller), ("origin", call.Origin),
            ("started_at", call.StartedAt), ("wake_at", call.WakeAt), ("snapshot", call.Snapshot), ("holder", holder), ("lease", lease),
            ("scheduled_table", (object?)call.ScheduledTable ?? DBNull.Value), ("scheduled_id", (object?)call.ScheduledId ?? DBNull.Value)) == 1;

    /// <summary>Renews the lease of one call; false when another server took it over.</summary>
    public async Task<IReadOnlyList<bool>> HoldAsync(IReadOnlyList<Guid> ids, string holder, TimeSpan lease, CancellationToken cancellationToken)
    {
        await using var command = Command(HoldSql, [("ids", ids.ToArray()), ("holder", holder), ("lease", lease)]);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var held = new HashSet<Guid>();
        while (await reader.ReadAsync(cancellationToken))
        {
            held.Add(reader.GetGuid(0));
        }
        return ids.Select(held.Contains).ToList();
    }

    /// <summary>Renews the lease of every call <paramref name="holder"/> holds.</summary>
    public Task<int> RenewAsync(string holder, TimeSpan lease, CancellationToken cancellationToken) =>
        ExecuteAsync(RenewSql, cancellationToken, ("holder", holder), ("lease", lease));

    /// <summary>Lets one call go, for any server (this one too) to take over after <paramref name="delay"/>.</summary>
    public Task<int> ReleaseAsync(Guid id, string holder, TimeSpan delay, CancellationToken cancellationToken) =>
        ExecuteAsync(ReleaseSql, cancellationToken, ("id", id), ("holder", holder), ("delay", delay));

    /// <summary>Lets every call <paramref name="holder"/> holds go, for any server to take over at once.</summary>
    public Task<int> HandBackAsync(string holder, CancellationToken cancellationToken) =>
        ExecuteAsync(HandBackSql, cancellationToken, ("holder", holder));

    /// <summary>Leases up to <paramref name="limit"/> calls whose lease ended and that wake within <paramref name="lookahead"/>.</summary>
    public async Task<List<SleepingCall>> ClaimAsync(string holder, TimeSpan lease, TimeSpan lookahead, int limit, CancellationToken cancellationToken)
    {
        await using var command = Command(ClaimSql, [("holder", holder), ("lease", lease), ("lookahead", lookahead), ("limit", limit)]);
        return await ReadSleepingAsync(command, cancellationToken);
    }

    /// <summary>Takes over the snapshots of these leased rows' scheduled runs (see <see cref="TakeScheduledSql"/>); rows that never slept long have none.</summary>
    public async Task<List<SleepingCall>> TakeScheduledAsync(string database, string table, long[] ids, string holder, TimeSpan lease, CancellationToken cancellationToken)
    {
        await using var command = Command(TakeScheduledSql, [("db", database), ("tbl", table), ("ids", ids), ("holder", holder), ("lease", lease)]);
        return await ReadSleepingAsync(command, cancellationToken);
    }

    private static async Task<List<SleepingCall>> ReadSleepingAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var calls = new List<SleepingCall>();
        while (await reader.ReadAsync(cancellationToken))
        {
            calls.Add(new SleepingCall(
                reader.GetGuid(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4), reader.GetString(5),
                reader.GetFieldValue<DateTimeOffset>(6), reader.GetFieldValue<DateTimeOffset>(7), reader.GetFieldValue<byte[]>(8),
                reader.IsDBNull(9) ? null : reader.GetString(9), reader.IsDBNull(10) ? null : reader.GetInt64(10)));
        }
        return calls;
    }

    /// <summary>
    /// Starts keeping a call (made asynchronously or with an idempotency key); false when its key
    /// is taken: another call of this caller on this database holds it (see <see cref="FindByKeyAsync"/>).
    /// </summary>
    public async Task<bool> StartAsync(StoredCall call, string? key, string holder, TimeSpan lease, CancellationToken cancellationToken)
    {
        await using var command = Command(StartSql,
            [("id", call.Id), ("db", call.Database), ("fn", call.Function), ("caller", call.Caller), ("key", (object?)key ?? DBNull.Value),
             ("request_sha256", (object?)call.RequestSha256 ?? DBNull.Value), ("started_at", call.StartedAt), ("holder", holder), ("lease", lease)]);
        return await command.ExecuteScalarAsync(cancellationToken) is Guid;
    }

    /// <summary>Records how calls ended (see <see cref="FinishSql"/>), many in one statement.</summary>
    /// <param name="ends">Each call's end, and whether it is kept whatever became of its sleeps (made asynchronously or with a key).</param>
    public async Task FinishAsync(IReadOnlyList<(CallEnd End, bool Kept)> ends, string holder, CancellationToken cancellationToken)
    {
        await using var command = Command(FinishSql, FinishParameters(ends, holder));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// In a scheduled run's transaction, which finishes its row too: records how the run ended
    /// (see <see cref="FinishSql"/>) and drops whatever snapshot of the row is left (one whose save
    /// seemed to fail, say), so that no later run of the row wakes from it.
    /// </summary>
    public static Task FinishScheduledAsync(Tables.DatabaseTransaction transaction, CallEnd end, string table, long scheduledId, string holder, CancellationToken cancellationToken) =>
        transaction.ExecuteAsync(
            FinishSql + ";\nDELETE FROM procyon.sleeping_calls WHERE db = @db AND scheduled_table = @tbl AND scheduled_id = @sid",
            cancellationToken,
            [.. FinishParameters([(end, false)], holder), ("db", end.Database), ("tbl", table), ("sid", scheduledId)]);

    private static (string, object)[] FinishParameters(IReadOnlyList<(CallEnd End, bool Kept)> ends, string holder) =>
        [("holder", holder), ("ids", ends.Select(e => e.End.Id).ToArray()), ("dbs", ends.Select(e => e.End.Database).ToArray()),
         ("fns", ends.Select(e => e.End.Function).ToArray()), ("callers", ends.Select(e => e.End.Caller).ToArray()),
         ("started_ats", ends.Select(e => e.End.StartedAt).ToArray()), ("statuses", ends.Select(e => e.End.Status).ToArray()),
         ("failures", ends.Select(e => e.End.Failure).ToArray()), ("values", ends.Select(e => e.End.Value).ToArray()),
         ("errors", ends.Select(e => e.End.Error).ToArray()), ("kept", ends.Select(e => e.Kept).ToArray())];

    /// <summary>Cancels a call that has not ended (see <see cref="CancelSql"/>); false when there was none to cancel.</summary>
    public async Task<bool> CancelAsync(Guid id, string failure, string error, CancellationToken cancellationToken)
    {
        await using var command = Command(CancelSql, CancelParameters(id, null, failure, error));
        return (long)(await command.ExecuteScalarAsync(cancellationToken))! > 0;
    }

    /// <summary>
    /// In a publish's transaction: cancels every call of the database asleep in Postgres (see
    /// <see cref="CancelSql"/>); the servers holding them hear of it once the publish commits.
    /// </summary>
    public static async Task<long> CancelSleepingAsync(Tables.DatabaseTransaction transaction, string database, string failure, string error, CancellationToken cancellationToken)
    {
        await using var command = transaction.CreateCommand(CancelSql, CancelParameters(null, database, failure, error));
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private static (string, object)[] CancelParameters(Guid? id, string? database, string failure, string error) =>
        [("id", (object?)id ?? DBNull.Value), ("db", (object?)database ?? DBNull.Value), ("failure", failure), ("error", error)];

    /// <summary>The code of a replaced version of a database that calls may be asleep on, or null when it is gone (or was another owner's).</summary>
    public async Task<byte[]?> FindVersionAsync(string database, string sha256, string? owner, CancellationToken cancellationToken)
    {
        await using var command = Command(VersionSql, [("db", database), ("sha256", sha256), ("owner", (object?)owner ?? DBNull.Value)]);
        return await command.ExecuteScalarAsync(cancellationToken) as byte[];
    }

    /// <summary>A connection listening on <see cref="CancelsChannel"/>; wait on it with <c>WaitAsync</c>.</summary>
    public Task<NpgsqlConnection> ListenForCancelsAsync(NotificationEventHandler onCancel, CancellationToken cancellationToken) =>
        Listener.OpenAsync(dataSource, CancelsChannel, onCancel, cancellationToken);

    /// <summary>Ends the kept calls whose server stopped renewing them while they ran (not asleep in Postgres).</summary>
    public Task<int> ReapAsync(CancellationToken cancellationToken) => ExecuteAsync(ReapSql, cancellationToken);

    /// <summary>The call a caller made on a database with an idempotency key, or null.</summary>
    public async Task<StoredCall?> FindByKeyAsync(string caller, string database, string key, CancellationToken cancellationToken)
    {
        var calls = await QueryAsync(FindByKeySql, cancellationToken, ("caller", caller), ("db", database), ("key", key));
        return calls.Count > 0 ? calls[0] : null;
    }

    /// <summary>A durable call, asleep or finished, or null.</summary>
    public async Task<StoredCall?> FindAsync(Guid id, CancellationToken cancellationToken)
    {
        var calls = await QueryAsync(FindSql, cancellationToken, ("id", id));
        return calls.Count > 0 ? calls[0] : null;
    }

    /// <summary>The calls of a database asleep in Postgres, soonest to wake first.</summary>
    public Task<List<StoredCall>> SleepingAsync(string database, int limit, CancellationToken cancellationToken) =>
        QueryAsync(ListSql, cancellationToken, ("db", database), ("limit", limit));

    /// <summary>
    /// In a delete's transaction: drops the database's sleeping calls, which must never wake on
    /// whatever is published under the name next (another owner's, maybe with the same bytes),
    /// and its finished ones, whose results the name's next owner must not read.
    /// </summary>
    public static Task DropAsync(Tables.DatabaseTransaction transaction, string database, CancellationToken cancellationToken) =>
        transaction.ExecuteAsync(DropSql, cancellationToken, ("db", database));

    /// <summary>Deletes finished calls older than <paramref name="retention"/>.</summary>
    public Task<int> ForgetAsync(TimeSpan retention, CancellationToken cancellationToken) =>
        ExecuteAsync(ForgetSql, cancellationToken, ("retention", retention));

    private async Task<List<StoredCall>> QueryAsync(string sql, CancellationToken cancellationToken, params (string Name, object Value)[] parameters)
    {
        await using var command = Command(sql, parameters);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var calls = new List<StoredCall>();
        while (await reader.ReadAsync(cancellationToken))
        {
            calls.Add(new StoredCall(
                reader.GetGuid(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4),
                reader.IsDBNull(5) ? null : reader.GetString(5), reader.IsDBNull(6) ? null : reader.GetString(6),
                reader.GetFieldValue<DateTimeOffset>(7),
                reader.IsDBNull(8) ? null : reader.GetFieldValue<DateTimeOffset>(8),
                reader.IsDBNull(9) ? null : reader.GetFieldValue<DateTimeOffset>(9),
                reader.IsDBNull(10) ? null : reader.GetString(10),
                reader.IsDBNull(11) ? null : reader.GetString(11)));
        }
        return calls;
    }

    private async Task<int> ExecuteAsync(string sql, CancellationToken cancellationToken, params (string Name, object Value)[] parameters)
    {
        await using var command = Command(sql, parameters);
        return await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private NpgsqlCommand Command(string sql, (string Name, object Value)[] parameters)
    {
        var command = dataSource.CreateCommand(sql);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
        return command;
    }
}
