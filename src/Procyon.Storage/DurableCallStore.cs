using Npgsql;

namespace Procyon.Storage;

/// <summary>A procedure call asleep in Postgres: who made it, on what, and its suspended state.</summary>
/// <param name="Sha256">The SHA-256 of the module code it runs on (the rewrite the server runs, whose stack its snapshot holds).</param>
/// <param name="Snapshot">The suspended instance (memory, globals, the call's arguments), as the runtime wrote it.</param>
public sealed record SleepingCall(
    Guid Id, string Database, string Sha256, string Function, string Caller, string Origin, DateTimeOffset StartedAt, DateTimeOffset WakeAt, byte[] Snapshot);

/// <summary>A durable call as <c>GET /v1/calls/{id}</c> shows it: asleep, or finished with its result.</summary>
/// <param name="Value">The return value as JSON text, when the call ended well.</param>
public sealed record StoredCall(
    Guid Id, string Database, string Function, string Caller, string Status, string? Value, string? Error, DateTimeOffset StartedAt, DateTimeOffset? FinishedAt, DateTimeOffset? WakeAt);

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
            finished_at timestamptz NOT NULL
        );
        CREATE INDEX IF NOT EXISTS calls_finished ON procyon.calls (finished_at);
        """;

    private const string SaveSql = """
        INSERT INTO procyon.sleeping_calls (id, db, sha256, fn, caller, origin, started_at, wake_at, snapshot, holder, lease_until)
        VALUES (@id, @db, @sha256, @fn, @caller, @origin, @started_at, @wake_at, @snapshot, @holder, now() + @lease)
        ON CONFLICT (id) DO UPDATE SET wake_at = excluded.wake_at, snapshot = excluded.snapshot, lease_until = excluded.lease_until
        WHERE procyon.sleeping_calls.holder = excluded.holder
        """;

    private const string HoldSql = "UPDATE procyon.sleeping_calls SET lease_until = now() + @lease WHERE id = @id AND holder = @holder";

    private const string RenewSql = "UPDATE procyon.sleeping_calls SET lease_until = now() + @lease WHERE holder = @holder";

    private const string ReleaseSql = "UPDATE procyon.sleeping_calls SET holder = '', lease_until = now() + @delay WHERE id = @id AND holder = @holder";

    private const string HandBackSql = "UPDATE procyon.sleeping_calls SET lease_until = '-infinity' WHERE holder = @holder";

    private const string ClaimSql = """
        UPDATE procyon.sleeping_calls s SET holder = @holder, lease_until = greatest(s.wake_at, now()) + @lease
        FROM (SELECT id FROM procyon.sleeping_calls
              WHERE lease_until < now() AND wake_at < now() + @lookahead
              ORDER BY wake_at LIMIT @limit FOR UPDATE SKIP LOCKED) due
        WHERE s.id = due.id
        RETURNING s.id, s.db, s.sha256, s.fn, s.caller, s.origin, s.started_at, s.wake_at, s.snapshot
        """;

    /// <summary>Moves the call from asleep to finished, only while this server holds it.</summary>
    private const string FinishSql = """
        WITH finished AS (DELETE FROM procyon.sleeping_calls WHERE id = @id AND holder = @holder RETURNING id, db, fn, caller, started_at)
        INSERT INTO procyon.calls (id, db, fn, caller, status, value, error, started_at, finished_at)
        SELECT id, db, fn, caller, @status, @value, @error, started_at, now() FROM finished
        """;

    private const string FindSql = """
        SELECT id, db, fn, caller, 'sleeping', NULL, NULL, started_at, NULL::timestamptz, wake_at FROM procyon.sleeping_calls WHERE id = @id
        UNION ALL
        SELECT id, db, fn, caller, status, value, error, started_at, finished_at, NULL FROM procyon.calls WHERE id = @id
        """;

    private const string ListSql = """
        SELECT id, db, fn, caller, 'sleeping', NULL, NULL, started_at, NULL::timestamptz, wake_at FROM procyon.sleeping_calls
        WHERE db = @db ORDER BY wake_at LIMIT @limit
        """;

    private const string DropSql = "DELETE FROM procyon.sleeping_calls WHERE db = @db; DELETE FROM procyon.calls WHERE db = @db";

    private const string ForgetSql = "DELETE FROM procyon.calls WHERE finished_at < now() - @retention";

    /// <summary>Writes (or rewrites, for a later sleep of the same call) a sleeping call held by <paramref name="holder"/>.</summary>
    public async Task SaveAsync(SleepingCall call, string holder, TimeSpan lease, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SaveSql);
        command.Parameters.AddWithValue("id", call.Id);
        command.Parameters.AddWithValue("db", call.Database);
        command.Parameters.AddWithValue("sha256", call.Sha256);
        command.Parameters.AddWithValue("fn", call.Function);
        command.Parameters.AddWithValue("caller", call.Caller);
        command.Parameters.AddWithValue("origin", call.Origin);
        command.Parameters.AddWithValue("started_at", call.StartedAt);
        command.Parameters.AddWithValue("wake_at", call.WakeAt);
        command.Parameters.AddWithValue("snapshot", call.Snapshot);
        command.Parameters.AddWithValue("holder", holder);
        command.Parameters.AddWithValue("lease", lease);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Renews the lease of one call; false when another server took it over.</summary>
    public async Task<bool> HoldAsync(Guid id, string holder, TimeSpan lease, CancellationToken cancellationToken) =>
        await ExecuteAsync(HoldSql, cancellationToken, ("id", id), ("holder", holder), ("lease", lease)) == 1;

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
        await using var command = dataSource.CreateCommand(ClaimSql);
        command.Parameters.AddWithValue("holder", holder);
        command.Parameters.AddWithValue("lease", lease);
        command.Parameters.AddWithValue("lookahead", lookahead);
        command.Parameters.AddWithValue("limit", limit);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var calls = new List<SleepingCall>();
        while (await reader.ReadAsync(cancellationToken))
        {
            calls.Add(new SleepingCall(
                reader.GetGuid(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4), reader.GetString(5),
                reader.GetFieldValue<DateTimeOffset>(6), reader.GetFieldValue<DateTimeOffset>(7), reader.GetFieldValue<byte[]>(8)));
        }
        return calls;
    }

    /// <summary>Records how the call ended and drops its snapshot; false when this server no longer held it (another took it over).</summary>
    public async Task<bool> FinishAsync(Guid id, string holder, string status, string? value, string? error, CancellationToken cancellationToken) =>
        await ExecuteAsync(FinishSql, cancellationToken, ("id", id), ("holder", holder), ("status", status), ("value", (object?)value ?? DBNull.Value), ("error", (object?)error ?? DBNull.Value)) == 1;

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
                reader.IsDBNull(9) ? null : reader.GetFieldValue<DateTimeOffset>(9)));
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
