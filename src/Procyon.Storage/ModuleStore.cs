using System.Runtime.CompilerServices;
using Npgsql;

namespace Procyon.Storage;

/// <summary>The database belongs to another identity (403).</summary>
public sealed class NotOwnerException(string database) : Exception($"database '{database}' belongs to another identity");

/// <summary>The catalog of published modules, in the <c>procyon</c> schema.</summary>
public sealed class ModuleStore(NpgsqlDataSource dataSource)
{
    /// <summary>Serialises catalog creation when several replicas start at once.</summary>
    private const long CatalogLockKey = 0x70726f6379_6f6e;

    private const string CreateCatalogSql = """
        SELECT pg_advisory_xact_lock(@lock);
        CREATE SCHEMA IF NOT EXISTS procyon;
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
        CREATE TABLE IF NOT EXISTS procyon.settings (
            key         text PRIMARY KEY,
            value       text NOT NULL
        );
        CREATE TABLE IF NOT EXISTS procyon.readers (
            db          text PRIMARY KEY,
            password    text NOT NULL
        );
        """;

    private const string UpsertSql = """
        INSERT INTO procyon.databases (name, wasm, prepared, sha256, owner)
        VALUES (@name, @wasm, @prepared, @sha256, @owner)
        ON CONFLICT (name) DO UPDATE
        SET wasm = excluded.wasm, prepared = excluded.prepared, sha256 = excluded.sha256, updated_at = now(),
            owner = coalesce(procyon.databases.owner, excluded.owner)
        WHERE procyon.databases.owner IS NULL OR procyon.databases.owner = excluded.owner
        RETURNING updated_at, (xmax = 0) AS created
        """;

    private const string OwnerSql = "SELECT owner FROM procyon.databases WHERE name = @name";

    private const string SelectOneSql = "SELECT name, wasm, prepared, sha256, updated_at FROM procyon.databases WHERE name = @name";

    private const string NotifySql = "SELECT pg_notify('" + ChangesChannel + "', @name)";

    /// <summary>The LISTEN/NOTIFY channel that tells replicas a database was published or deleted.</summary>
    public const string ChangesChannel = "procyon_modules";

    private const string SettingSql = """
        INSERT INTO procyon.settings (key, value) VALUES (@key, @value) ON CONFLICT (key) DO NOTHING;
        SELECT value FROM procyon.settings WHERE key = @key;
        """;

    private const string SelectAllSql = "SELECT name, wasm, prepared, sha256, updated_at FROM procyon.databases ORDER BY name";

    private const string DeleteSql = "DELETE FROM procyon.databases WHERE name = @name";

    public async Task EnsureCatalogAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var command = new NpgsqlCommand(CreateCatalogSql, connection, transaction))
        {
            command.Parameters.AddWithValue("lock", CatalogLockKey);
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>
    /// Inserts or replaces a module; returns true when the name was new. Throws
    /// <see cref="NotOwnerException"/> when the name belongs to another owner.
    /// </summary>
    public async Task<bool> SaveAsync(StoredModule module, string owner, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(UpsertSql);
        command.Parameters.AddWithValue("name", module.Name);
        command.Parameters.AddWithValue("wasm", module.Wasm);
        command.Parameters.AddWithValue("prepared", module.Prepared);
        command.Parameters.AddWithValue("sha256", module.Sha256);
        command.Parameters.AddWithValue("owner", owner);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? reader.GetBoolean(1) : throw new NotOwnerException(module.Name);
    }

    /// <summary>One published module, or null.</summary>
    public async Task<StoredModule?> LoadAsync(string name, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectOneSql);
        command.Parameters.AddWithValue("name", name);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Read(reader) : null;
    }

    /// <summary>Tells every replica (through LISTEN/NOTIFY) that this database changed.</summary>
    public async Task NotifyChangedAsync(string name, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(NotifySql);
        command.Parameters.AddWithValue("name", name);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>A connection listening on <see cref="ChangesChannel"/>; wait on it with <c>WaitAsync</c>.</summary>
    public async Task<NpgsqlConnection> ListenAsync(NotificationEventHandler onChange, CancellationToken cancellationToken)
    {
        var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        connection.Notification += onChange;
        await using var command = new NpgsqlCommand($"LISTEN {ChangesChannel}", connection);
        await command.ExecuteNonQueryAsync(cancellationToken);
        return connection;
    }

    /// <summary>The identity (hex) that owns a database, or null when there is no such database.</summary>
    public async Task<string?> OwnerAsync(string name, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(OwnerSql);
        command.Parameters.AddWithValue("name", name);
        return await command.ExecuteScalarAsync(cancellationToken) as string;
    }

    /// <summary>A server-wide setting, created with <paramref name="create"/>'s value by whichever replica asks first.</summary>
    public async Task<string> SettingAsync(string key, Func<string> create, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SettingSql);
        command.Parameters.AddWithValue("key", key);
        command.Parameters.AddWithValue("value", create());
        return (string)(await command.ExecuteScalarAsync(cancellationToken))!;
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
        reader.GetString(3),
        reader.GetFieldValue<DateTimeOffset>(4));

    /// <summary>Returns false when there was no such module.</summary>
    public async Task<bool> DeleteAsync(string name, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(DeleteSql);
        command.Parameters.AddWithValue("name", name);
        return await command.ExecuteNonQueryAsync(cancellationToken) > 0;
    }

    /// <summary>A cheap round trip, for readiness checks.</summary>
    public async Task PingAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT 1");
        await command.ExecuteScalarAsync(cancellationToken);
    }
}
