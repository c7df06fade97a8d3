using Npgsql;

namespace Procyon.Testing;

/// <summary>A fresh Postgres database for one test class, dropped afterwards.</summary>
public sealed class TestDatabase : IAsyncDisposable
{
    /// <summary>Where test databases are created; the role needs CREATEDB (deploy/common.sh grants it). Loopback: no TLS.</summary>
    private static readonly string AdminConnectionString =
        Environment.GetEnvironmentVariable("PROCYON_TEST_POSTGRES") ?? "Host=localhost;Username=procyon;Password=procyon;Database=postgres;SSL Mode=Disable";

    private TestDatabase(string name)
    {
        Name = name;
        ConnectionString = new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = name }.ConnectionString;
    }

    public string Name { get; }

    public string ConnectionString { get; }

    public static async Task<TestDatabase> CreateAsync()
    {
        var database = new TestDatabase($"procyon_test_{Guid.NewGuid():N}");
        await AdminAsync($"CREATE DATABASE \"{database.Name}\"");
        return database;
    }

    public async ValueTask DisposeAsync()
    {
        // Only this database's pool: clearing every pool would pull connections from under test
        // classes running meanwhile. DROP … WITH (FORCE) ends this database's sessions anyway.
        await using (var pooled = new NpgsqlConnection(ConnectionString))
        {
            NpgsqlConnection.ClearPool(pooled);
        }
        await AdminAsync($"DROP DATABASE IF EXISTS \"{Name}\" WITH (FORCE)");
    }

    private static async Task AdminAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
