using System.Runtime.CompilerServices;
using Npgsql;
using Procyon.Storage.Tables;

namespace Procyon.Storage;

/// <summary>The database belongs to another identity (403).</summary>
public sealed class NotOwnerException(string database) : Exception($"database '{database}' belongs to another identity");

/// <summary>The identity owns as many databases as it may (403).</summary>
public sealed class DatabaseLimitException(int limit)
    : Exception($"this identity owns {limit} databases, as many as it may (Procyon:Runtime:MaxDatabasesPerIdentity); delete one first");

/// <summary>The catalog of published modules, in the <c>procyon</c> schema.</summary>
public sealed class ModuleStore(NpgsqlDataSource dataSource)
{
    /// <summary>
    /// Replicas starting at once take turns from the lock on. A table lock rather than an advisory
    /// lock: any session may take any advisory lock (a SQL reader's too, holding it as long as its
    /// query runs), while locking this table takes privileges only the server's role has.
    /// </summary>
    private const string LockCatalogSql = """
        CREATE SCHEMA IF NOT EXISTS procyon;
        CREATE TABLE IF NOT EXISTS procyon.settings (
            key         text PRIMARY KEY,
            value       text NOT NULL
        );
        LOCK TABLE procyon.settings IN SHARE ROW EXCLUSIVE MODE;
        SELECT value FROM procyon.settings WHERE key = 'catalog';
        """;

    /// <summary>
    /// The catalog's tables, idempotent. It runs only when the catalog was made by another version
    /// of it (<see cref="CatalogVersion"/>): its ALTERs take exclusive locks, which would make
    /// every start of a replica wait for (or deadlock with) the durable calls other replicas are
    /// renewing and finishing.
    /// </summary>
    private const string CreateCatalogSql = """
        CREATE TABLE IF NOT EXISTS procyon.databases (
            name        text PRIMARY KEY,
            wasm        bytea NOT NULL,
            prepared    bytea NOT NULL,
            sha256      text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE IF NOT EXISTS procyon.tables (
            db          text NOT NULL,
            name        text NOT NULL,
            definition  text NOT NULL,
            PRIMARY KEY (db, name)
        );
        ALTER TABLE procyon.databases ADD COLUMN IF NOT EXISTS owner text;
        CREATE TABLE IF NOT EXISTS procyon.readers (
            db          text PRIMARY KEY,
            password    text NOT NULL
        );
        ALTER TABLE procyon.readers ADD COLUMN IF NOT EXISTS public_password text;
        ALTER TABLE procyon.databases ADD COLUMN IF NOT EXISTS optimized boolean NOT NULL DEFAULT true;
        CREATE INDEX IF NOT EXISTS databases_sha256 ON procyon.databases (sha256);
        """ + ScheduleStore.CreateIndexSql + DurableCallStore.CreateSql + TableSchema.UpgradeDueFunctionsSql;

    private const string CatalogMadeSql = "INSERT INTO procyon.settings (key, value) VALUES ('catalog', @version) ON CONFLICT (key) DO UPDATE SET value = excluded.value";

    /// <summary>What made the catalog: a hash of <see cref="CreateCatalogSql"/>, kept in <c>procyon.settings</c>.</summary>
    private static readonly string CatalogVersion = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(CreateCatalogSql)));

    private const string ClaimSql = """
        INSERT INTO procyon.databases (name, wasm, prepared, optimized, sha256, owner)
        VALUES (@name, @wasm, @prepared, @optimized, @sha256, @owner)
        ON CONFLICT (name) DO NOTHING
        RETURNING true
        """;

    /// <summary>Locks the row until the transaction ends, so publishes and deletes of one database take turns on every replica.</summary>
    private const string LockOwnerSql = "SELECT owner FROM procyon.databases WHERE name = @name FOR UPDATE";

    private const string OwnedSql = "SELECT count(*) FROM procyon.databases WHERE owner = @owner";

    private const string ReplaceSql = DurableCallStore.RetireSql +
        "UPDATE procyon.databases SET wasm = @wasm, prepared = @prepared, optimized = @optimized, sha256 = @sha256, updated_at = now() WHERE name = @name";

    private const string ClaimableSql = "SELECT owner IS NOT DISTINCT FROM @owner FROM procyon.databases WHERE name = @name";

    private const string SelectOneSql = "SELECT name, wasm, prepared, optimized, sha256, updated_at, owner FROM procyon.databases WHERE name = @name";

    private const string RewrittenSql = "SELECT prepared, optimized FROM procyon.databases WHERE sha256 = @sha256 AND wasm = @wasm ORDER BY optimized DESC LIMIT 1";

    /// <summary>
    /// One statement, so the rows change and their notifications go out on one commit; the quick
    /// rewrite they ran is kept for the calls asleep on it (<see cref="DurableCallStore.RetireQuickCte"/>).
    /// </summary>
    private const string OptimizedSql = $$"""
        WITH {{DurableCallStore.RetireQuickCte}},
        changed AS (
            UPDATE procyon.databases SET prepared = @prepared, optimized = true
            WHERE sha256 = @sha256 AND wasm = @wasm AND NOT optimized
            RETURNING name)
        SELECT name, pg_notify('{{ChangesChannel}}', name) FROM changed
        """;

    private const string NotifySql = "SELECT pg_notify('" + ChangesChannel + "', @name)";

    /// <summary>The LISTEN/NOTIFY channel that tells replicas a database was published or deleted.</summary>
    public const string ChangesChannel = "procyon_modules";

    private const string SettingSql = """
        INSERT INTO procyon.settings (key, value) VALUES (@key, @value) ON CONFLICT (key) DO NOTHING;
        SELECT value FROM procyon.settings WHERE key = @key;
        """;

    private const string VersionsSql = "SELECT name, sha256, owner, optimized FROM procyon.databases";

    private const string SelectAllSql = "SELECT name, wasm, prepared, optimized, sha256, updated_at, owner FROM procyon.databases ORDER BY name";

    private const string DeleteSql = "DELETE FROM procyon.databases WHERE name = @name";

    public async Task EnsureCatalogAsync(CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
                await using (var locking = new NpgsqlCommand(LockCatalogSql, connection, transaction))
                {
                    if (await locking.ExecuteScalarAsync(cancellationToken) as string != CatalogVersion)
                    {
                        await using (var create = new NpgsqlCommand(CreateCatalogSql, connection, transaction))
                        {
                            await create.ExecuteNonQueryAsync(cancellationToken);
                        }
                        await using var made = new NpgsqlCommand(CatalogMadeSql, connection, transaction);
                        made.Parameters.AddWithValue("version", CatalogVersion);
                        await made.ExecuteNonQueryAsync(cancellationToken);
                    }
                }
                await using (var fill = new NpgsqlCommand(ScheduleStore.FillIndexSql, connection, transaction))
                {
                    await fill.ExecuteNonQueryAsync(cancellationToken);
                }
                await transaction.CommitAsync(cancellationToken);
                return;
            }
            catch (PostgresException e) when (attempt < 3 && e.SqlState is PostgresErrorCodes.UniqueViolation or PostgresErrorCodes.DuplicateSchema or PostgresErrorCodes.DuplicateTable)
            {
                // Another replica created the schema or the lock's table at the same moment, before
                // either could lock: both exist now, so the next attempt gets as far as the lock.
            }
            catch (PostgresException e) when (attempt < 3 && e.SqlState == PostgresErrorCodes.DeadlockDetected)
            {
                // A new catalog's exclusive locks met a running replica's statements: rolled back, it tries again.
            }
        }
    }

    /// <summary>
    /// In a publish's transaction: claims the name for <paramref name="owner"/> (returns true), or
    /// locks the existing row and replaces its module when <paramref name="owner"/> owns it.
    /// Throws <see cref="NotOwnerException"/> otherwise, also for a database without an owner.
    /// Two first publishers of a name meet at its primary key: the second waits for the first
    /// to commit and is then refused (or claims the name if the first rolled back).
    /// </summary>
    /// <param name="maxOwned">Databases one identity may own; claiming one more throws <see cref="DatabaseLimitException"/>.</param>
    public async Task<bool> SaveAsync(DatabaseTransaction transaction, StoredModule module, string owner, int maxOwned, CancellationToken cancellationToken)
    {
        (string, object)[] parameters = [("name", module.Name), ("wasm", module.Wasm), ("prepared", module.Prepared), ("optimized", module.Optimized), ("sha256", module.Sha256), ("owner", owner)];
        while (true)
        {
            await using (var claim = transaction.CreateCommand(ClaimSql, parameters))
            {
                if (await claim.ExecuteScalarAsync(cancellationToken) is true)
                {
                    await using var owned = transaction.CreateCommand(OwnedSql, ("owner", owner));
                    if ((long)(await owned.ExecuteScalarAsync(cancellationToken))! > maxOwned)
                    {
                        throw new DatabaseLimitException(maxOwned);
                    }
                    return true;
                }
            }
            if (await LockOwnerAsync(transaction, module.Name, owner, cancellationToken))
            {
                await transaction.ExecuteAsync(ReplaceSql, cancellationToken, parameters);
                return false;
            }
            // The row went away (a delete committed) between the claim and the lock: claim again.
        }
    }

    /// <summary>
    /// In a delete's transaction: locks the catalog row and deletes it when <paramref name="caller"/>
    /// owns it; false when there is no such database. Throws <see cref="NotOwnerException"/> otherwise.
    /// </summary>
    public async Task<bool> DeleteAsync(DatabaseTransaction transaction, string name, string caller, CancellationToken cancellationToken)
    {
        if (!await LockOwnerAsync(transaction, name, caller, cancellationToken))
        {
            return false;
        }
        await transaction.ExecuteAsync(DeleteSql, cancellationToken, ("name", name));
        return true;
    }

    /// <summary>Locks the row of <paramref name="name"/>: false when there is none; throws unless <paramref name="caller"/> owns it.</summary>
    private static async Task<bool> LockOwnerAsync(DatabaseTransaction transaction, string name, string caller, CancellationToken cancellationToken)
    {
        await using var command = transaction.CreateCommand(LockOwnerSql, ("name", name));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return false;
        }
        if (reader.IsDBNull(0) || reader.GetString(0) != caller)
        {
            throw new NotOwnerException(name);
        }
        return true;
    }

    /// <summary>
    /// Whether <paramref name="caller"/> may publish <paramref name="name"/>: it is free or theirs.
    /// A cheap look before the expensive rewrite; the publish's transaction decides.
    /// </summary>
    public async Task<bool> IsClaimableByAsync(string name, string caller, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(ClaimableSql);
        command.Parameters.AddWithValue("name", name);
        command.Parameters.AddWithValue("owner", caller);
        return await command.ExecuteScalarAsync(cancellationToken) is not false;
    }

    /// <summary>
    /// What the rewrite made of these same bytes when any database published them before, or null:
    /// publishing one module to many databases, or again unchanged, rewrites it once.
    /// </summary>
    /// <returns>The rewritten bytes and whether they are the optimized rewrite (preferred when both exist).</returns>
    public async Task<(byte[] Prepared, bool Optimized)?> FindRewrittenAsync(string sha256, byte[] wasm, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(RewrittenSql);
        command.Parameters.AddWithValue("sha256", sha256);
        command.Parameters.AddWithValue("wasm", wasm);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? (reader.GetFieldValue<byte[]>(0), reader.GetBoolean(1)) : null;
    }

    /// <summary>
    /// Replaces the quick rewrite of these bytes with the optimized one in every database that
    /// runs them and tells every replica; returns those databases' names. A database republished
    /// meanwhile with other bytes is left alone.
    /// </summary>
    public async Task<IReadOnlyList<string>> SaveOptimizedAsync(string sha256, byte[] wasm, byte[] prepared, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(OptimizedSql);
        command.Parameters.AddWithValue("sha256", sha256);
        command.Parameters.AddWithValue("wasm", wasm);
        command.Parameters.AddWithValue("prepared", prepared);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var names = new List<string>();
        while (await reader.ReadAsync(cancellationToken))
        {
            names.Add(reader.GetString(0));
        }
        return names;
    }

    /// <summary>One published module, or null.</summary>
    public async Task<StoredModule?> LoadAsync(string name, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectOneSql);
        command.Parameters.AddWithValue("name", name);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Read(reader) : null;
    }

    /// <summary>Tells every replica (through LISTEN/NOTIFY) that this database changed, when the transaction commits.</summary>
    public static Task NotifyChangedAsync(DatabaseTransaction transaction, string name, CancellationToken cancellationToken) =>
        transaction.ExecuteAsync(NotifySql, cancellationToken, ("name", name));

    /// <summary>A connection listening on <see cref="ChangesChannel"/>; wait on it with <c>WaitAsync</c>.</summary>
    public Task<NpgsqlConnection> ListenAsync(NotificationEventHandler onChange, CancellationToken cancellationToken) =>
        Listener.OpenAsync(dataSource, ChangesChannel, onChange, cancellationToken);

    /// <summary>A server-wide setting, created with <paramref name="create"/>'s value by whichever replica asks first.</summary>
    public async Task<string> SettingAsync(string key, Func<string> create, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SettingSql);
        command.Parameters.AddWithValue("key", key);
        command.Parameters.AddWithValue("value", create());
        return (string)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>The SHA-256, owner and rewrite of every published module, by database name: what a replica compares to catch up.</summary>
    public async Task<Dictionary<string, ModuleVersion>> VersionsAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(VersionsSql);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var versions = new Dictionary<string, ModuleVersion>(StringComparer.Ordinal);
        while (await reader.ReadAsync(cancellationToken))
        {
            versions[reader.GetString(0)] = new ModuleVersion(reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetBoolean(3));
        }
        return versions;
    }

    public async IAsyncEnumerable<StoredModule> LoadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectAllSql);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            yield return Read(reader);
        }
    }

    private static StoredModule Read(NpgsqlDataReader reader) => new(
        reader.GetString(0),
        reader.GetFieldValue<byte[]>(1),
        reader.GetFieldValue<byte[]>(2),
        reader.GetBoolean(3),
        reader.GetString(4),
        reader.GetFieldValue<DateTimeOffset>(5),
        reader.IsDBNull(6) ? null : reader.GetString(6));

    /// <summary>A cheap round trip, for readiness checks.</summary>
    public async Task PingAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT 1");
        await command.ExecuteScalarAsync(cancellationToken);
    }
}
