using System.Runtime.CompilerServices;
using Npgsql;

namespace Procyon.Storage;

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
        CREATE TABLE IF NOT EXISTS procyon.readers (
            db          text PRIMARY KEY,
            password    text NOT NULL
        );
        """;

    private const string UpsertSql = """
        INSERT INTO procyon.databases (name, wasm, prepared, sha256)
        VALUES (@name, @wasm, @prepared, @sha256)
        ON CONFLICT (name) DO UPDATE
        SET wasm = excluded.wasm, prepared = excluded.prepared, sha256 = excluded.sha256, updated_at = now()
        RETURNING updated_at, (xmax = 0) AS created
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

    /// <summary>Inserts or replaces a module; returns true when the name was new.</summary>
    public async Task<bool> SaveAsync(StoredModule module, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(UpsertSql);
        command.Parameters.AddWithValue("name", module.Name);
        command.Parameters.AddWithValue("wasm", module.Wasm);
        command.Parameters.AddWithValue("prepared", module.Prepared);
        command.Parameters.AddWithValue("sha256", module.Sha256);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return reader.GetBoolean(1);
    }

    public async IAsyncEnumerable<StoredModule> LoadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SelectAllSql);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            yield return new StoredModule(
                reader.GetString(0),
                reader.GetFieldValue<byte[]>(1),
                reader.GetFieldValue<byte[]>(2),
                reader.GetString(3),
                reader.GetFieldValue<DateTimeOffset>(4));
        }
    }

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
