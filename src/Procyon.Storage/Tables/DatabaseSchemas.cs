using Npgsql;
using Procyon.Sats;

namespace Procyon.Storage.Tables;

/// <summary>Republishing would change or drop existing tables; the detail lists how.</summary>
public sealed class SchemaConflictException(IReadOnlyList<string> differences)
    : Exception("the module's tables differ from the stored ones (publish with ?clear=true to drop the data): " + string.Join("; ", differences))
{
    public IReadOnlyList<string> Differences { get; } = differences;
}

/// <summary>
/// Each database's Postgres schema: its tables, the catalog of their definitions (to refuse
/// incompatible republishes) and the read-only role the SQL endpoint uses.
/// </summary>
public sealed class DatabaseSchemas(NpgsqlDataSource dataSource)
{
    private const string DefinitionsSql = "SELECT name, definition FROM procyon.tables WHERE db = @db";
    private const string ForgetSql = "DELETE FROM procyon.tables WHERE db = @db";
    private const string RememberSql = "INSERT INTO procyon.tables (db, name, definition) VALUES (@db, @name, @definition)";
    private const string ReaderSql = """
        INSERT INTO procyon.readers (db, password) VALUES (@db, @password)
        ON CONFLICT (db) DO UPDATE SET password = excluded.password
        """;
    private const string ForgetReaderSql = "DELETE FROM procyon.readers WHERE db = @db";

    /// <summary>
    /// Creates the schema and any new tables. Changed or removed tables are refused unless
    /// <paramref name="clear"/>, which drops the old data. Returns true when the database's
    /// tables were created from nothing (so its init reducer should run).
    /// </summary>
    public async Task<bool> EnsureAsync(DatabaseTransaction transaction, string database, IReadOnlyList<TableSchema> tables, Typespace typespace, bool clear, CancellationToken cancellationToken)
    {
        var existing = new Dictionary<string, string>(StringComparer.Ordinal);
        await using (var command = transaction.CreateCommand(DefinitionsSql, ("db", database)))
        {
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                existing[reader.GetString(0)] = reader.GetString(1);
            }
        }
        var fresh = existing.Count == 0;
        if (clear && !fresh)
        {
            await DropAsync(transaction, database, cancellationToken);
            existing.Clear();
            fresh = true;
        }
        var differences = Differences(existing, tables, typespace);
        if (differences.Count > 0)
        {
            throw new SchemaConflictException(differences);
        }
        var schema = Sql.Quote(Sql.SchemaOf(database));
        var role = Sql.Quote(Sql.ReaderRoleOf(dataSource, database));
        var roleName = Sql.ReaderRoleOf(dataSource, database);
        // Hex only, so it can sit in the DDL literal; the role logs in as itself, so a query
        // cannot SET ROLE back to the server's own (privileged) role.
        var password = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(24));
        await transaction.ExecuteAsync($"""
            CREATE SCHEMA IF NOT EXISTS {schema};
            DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{roleName}') THEN
                    CREATE ROLE {role} LOGIN;
                END IF;
            END $$;
            ALTER ROLE {role} LOGIN PASSWORD '{password}' CONNECTION LIMIT 16;
            GRANT USAGE ON SCHEMA {schema} TO {role};
            -- The server may end the role's sessions (DROP DATABASE … WITH (FORCE) needs that); not the reverse.
            GRANT {role} TO CURRENT_USER;
            """, cancellationToken);
        await transaction.ExecuteAsync(ReaderSql, cancellationToken, ("db", database), ("password", password));
        foreach (var table in tables.Where(t => !existing.ContainsKey(t.Name)))
        {
            await transaction.ExecuteAsync(table.CreateSql(), cancellationToken);
            await transaction.ExecuteAsync(RememberSql, cancellationToken, ("db", database), ("name", table.Name), ("definition", table.Definition(typespace)));
        }
        await transaction.ExecuteAsync($"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}", cancellationToken);
        return fresh && tables.Count > 0;
    }

    /// <summary>Drops the database's schema, its tables and its role, in a delete's (or a clearing publish's) transaction.</summary>
    public async Task DropAsync(DatabaseTransaction transaction, string database, CancellationToken cancellationToken)
    {
        var roleName = Sql.ReaderRoleOf(dataSource, database);
        await transaction.ExecuteAsync($"""
            DROP SCHEMA IF EXISTS {Sql.Quote(Sql.SchemaOf(database))} CASCADE;
            DO $$ BEGIN
                IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{roleName}') THEN
                    DROP ROLE {Sql.Quote(Sql.ReaderRoleOf(dataSource, database))};
                END IF;
            END $$;
            """, cancellationToken);
        await transaction.ExecuteAsync(ForgetSql, cancellationToken, ("db", database));
        await transaction.ExecuteAsync(ForgetReaderSql, cancellationToken, ("db", database));
    }

    private static List<string> Differences(Dictionary<string, string> existing, IReadOnlyList<TableSchema> tables, Typespace typespace)
    {
        var differences = new List<string>();
        var published = tables.ToDictionary(t => t.Name, StringComparer.Ordinal);
        foreach (var (name, definition) in existing.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            if (!published.TryGetValue(name, out var table))
            {
                differences.Add($"table {name} would be removed");
            }
            else if (table.Definition(typespace) != definition)
            {
                differences.Add($"table {name} changes from ({definition}) to ({table.Definition(typespace)})");
            }
        }
        return differences;
    }
}
