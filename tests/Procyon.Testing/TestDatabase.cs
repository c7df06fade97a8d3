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

    /// <summary>Runs SQL on this database as the server's role would, behind the server's back.</summary>
    public async Task ExecuteAsync(string sql)
    {
        await using var connection = await OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>The first column of the first row.</summary>
    public async Task<T> ScalarAsync<T>(string sql)
    {
        await using var connection = await OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Reads Postgres directly, as psql would: each row as its columns joined by '|'.</summary>
    public async Task<List<string>> QueryAsync(string sql)
    {
        await using var connection = await OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
        {
            rows.Add(string.Join("|", Enumerable.Range(0, reader.FieldCount).Select(i => Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture))));
        }
        return rows;
    }

    private async Task<NpgsqlConnection> OpenAsync()
    {
        var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    public async ValueTask DisposeAsync()
    {
        var roles = await ReaderRolesAsync();
        // Only this database's pool: clearing every pool would pull connections from under test
        // classes running meanwhile. DROP … WITH (FORCE) ends this database's sessions anyway.
        await using (var pooled = new NpgsqlConnection(ConnectionString))
        {
            NpgsqlConnection.ClearPool(pooled);
        }
        await AdminAsync($"DROP DATABASE IF EXISTS \"{Name}\" WITH (FORCE)");
        // Roles belong to the whole cluster: they would outlive the database.
        foreach (var role in roles)
        {
            await AdminAsync($"DROP ROLE IF EXISTS \"{role}\"");
        }
    }

    /// <summary>The SQL endpoint's login roles of every database the servers published here.</summary>
    private async Task<List<string>> ReaderRolesAsync()
    {
        try
        {
            var databases = await QueryAsync("SELECT db FROM procyon.readers");
            return [.. databases.SelectMany(db => Enum.GetValues<Storage.Tables.SqlReader>().Select(reader => Storage.Tables.Sql.ReaderRoleOf(Name, db, reader)))];
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return [];
        }
    }

    private static async Task AdminAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
