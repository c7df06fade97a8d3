using Npgsql;
using Procyon.Sats;

namespace Procyon.Storage.Tables;

/// <summary>Republishing would change or drop existing tables in ways no migration does; the detail lists how, and what may change.</summary>
public sealed class SchemaConflictException(IReadOnlyList<string> differences)
    : Exception($"the module's tables differ from the stored ones: {string.Join("; ", differences)}. {char.ToUpperInvariant(TableMigration.Allowed[0])}{TableMigration.Allowed[1..]} (publish with ?clear=true to drop the data)")
{
    public IReadOnlyList<string> Differences { get; } = differences;
}

/// <summary>Postgres refused a step of a table's migration (an index the existing rows cannot fill, say); nothing was published (409).</summary>
public sealed class MigrationFailedException(string table, string reason, Exception inner)
    : Exception($"migrating table {table} failed, so nothing was published and the database is as it was: {reason}", inner);

/// <summary>
/// A table a publish migrates stayed locked by other transactions longer than the migration's lock
/// timeout; nothing was published, and trying again later may succeed (503).
/// </summary>
public sealed class TableBusyException(string table, TimeSpan lockTimeout, Exception inner)
    : Exception($"table {table} stayed in use by other transactions for longer than {lockTimeout.TotalMilliseconds:0} ms (Procyon:Runtime:MigrationLockTimeout), so its migration was given up and nothing was published; try again", inner);

/// <summary>
/// A table's name is taken by what Postgres named after another table of the module (an index
/// <c>t_pkey</c>, a key <c>t_c_key</c>, a sequence <c>t_c_seq</c>); the publisher can rename it (400).
/// </summary>
public sealed class TableNameTakenException(string table, string reason)
    : Exception($"table {table} cannot be created: {reason}; Postgres gave that name to an index, key or sequence of another table of the module, so name the table otherwise");

/// <summary>
/// Each database's Postgres schema: its tables, the catalog of their definitions (to refuse
/// incompatible republishes) and the read-only roles the SQL endpoint uses: the owner's reads
/// every table, everyone else's only the public ones, and Postgres enforces the difference.
/// </summary>
public sealed class DatabaseSchemas(NpgsqlDataSource dataSource)
{
    private const string DefinitionsSql = "SELECT name, definition FROM procyon.tables WHERE db = @db";
    private const string ForgetSql = "DELETE FROM procyon.tables WHERE db = @db";
    private const string RememberSql = "INSERT INTO procyon.tables (db, name, definition) VALUES (@db, @name, @definition)";
    private const string ReaderSql = """
        INSERT INTO procyon.readers (db, password, public_password) VALUES (@db, @password, @public_password)
        ON CONFLICT (db) DO UPDATE SET password = excluded.password, public_password = excluded.public_password
        """;
    private const string ForgetReaderSql = "DELETE FROM procyon.readers WHERE db = @db";
    private const string PasswordsSql = "SELECT password, public_password FROM procyon.readers WHERE db = @db";

    /// <summary>
    /// Creates the schema and any new tables and migrates the changed ones (<see cref="TableMigration"/>),
    /// waiting at most <paramref name="lockTimeout"/> for each lock a migration takes. Other changes
    /// and removed tables are refused unless <paramref name="clear"/>, which drops the old data.
    /// Returns true when the database's tables were created from nothing (so its init reducer should run).
    /// </summary>
    public async Task<bool> EnsureAsync(DatabaseTransaction transaction, string database, IReadOnlyList<TableSchema> tables, Typespace typespace, bool clear, TimeSpan lockTimeout, CancellationToken cancellationToken)
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
        var differences = new List<string>();
        var migrations = Migrations(existing, tables, typespace, differences);
        if (differences.Count > 0)
        {
            throw new SchemaConflictException(differences);
        }
        var schema = Sql.Quote(Sql.SchemaOf(database));
        await transaction.ExecuteAsync($"CREATE SCHEMA IF NOT EXISTS {schema}", cancellationToken);
        var (ownerPassword, publicPassword) = await PasswordsAsync(transaction, database, cancellationToken);
        var owner = await EnsureReaderAsync(transaction, database, SqlReader.Owner, ownerPassword, cancellationToken);
        var anyone = await EnsureReaderAsync(transaction, database, SqlReader.Public, publicPassword, cancellationToken);
        await transaction.ExecuteAsync(ReaderSql, cancellationToken, ("db", database), ("password", owner.Password), ("public_password", anyone.Password));
        foreach (var table in tables.Where(t => !existing.ContainsKey(t.Name)))
        {
            await CreateAsync(transaction, table, cancellationToken);
            await transaction.ExecuteAsync(RememberSql, cancellationToken, ("db", database), ("name", table.Name), ("definition", table.Definition(typespace)));
            if (table.ScheduledFunction is not null)
            {
                // After its catalog row, which the index row's foreign key names (and a delete cascades from).
                await ScheduleStore.IndexAsync(transaction, table, cancellationToken);
            }
        }
        await MigrateAsync(transaction, migrations, typespace, lockTimeout, cancellationToken);
        // Private unless marked public; a table's mark may change on any publish.
        var publicTables = string.Join(", ", tables.Where(t => t.IsPublic).Select(t => t.QualifiedName));
        await transaction.ExecuteAsync($"""
            GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {owner.Role};
            REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {anyone.Role};
            {(publicTables.Length == 0 ? "" : $"GRANT SELECT ON {publicTables} TO {anyone.Role};")}
            """, cancellationToken);
        return fresh && tables.Count > 0;
    }

    /// <summary>A module table, in the publish's transaction.</summary>
    private static async Task CreateAsync(DatabaseTransaction transaction, TableSchema table, CancellationToken cancellationToken)
    {
        try
        {
            await transaction.ExecuteAsync(table.CreateSql(), cancellationToken);
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.DuplicateTable or PostgresErrorCodes.DuplicateObject)
        {
            throw new TableNameTakenException(table.Name, e.MessageText);
        }
    }

    /// <summary>
    /// The readers' passwords of an earlier publish, kept so that the SQL endpoint's pools of
    /// sessions (on every replica) stay valid across republishes; null where there are none.
    /// </summary>
    private static async Task<(string? Owner, string? Public)> PasswordsAsync(DatabaseTransaction transaction, string database, CancellationToken cancellationToken)
    {
        await using var command = transaction.CreateCommand(PasswordsSql, ("db", database));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? (reader.IsDBNull(0) ? null : reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1))
            : (null, null);
    }

    /// <summary>
    /// Creates (or keeps) the login role of one kind of SQL reader with <paramref name="password"/>
    /// (a new one when null), allowed into the schema but to no table yet. Returns its quoted name
    /// and the password.
    /// </summary>
    private async Task<(string Role, string Password)> EnsureReaderAsync(DatabaseTransaction transaction, string database, SqlReader reader, string? password, CancellationToken cancellationToken)
    {
        var roleName = Sql.ReaderRoleOf(dataSource, database, reader);
        var role = Sql.Quote(roleName);
        // Hex only, so it can sit in the DDL literal; the role logs in as itself, so a query
        // cannot SET ROLE back to the server's own (privileged) role.
        password ??= Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(24));
        await transaction.ExecuteAsync($"""
            DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{roleName}') THEN
                    CREATE ROLE {role} LOGIN;
                END IF;
            END $$;
            ALTER ROLE {role} LOGIN PASSWORD '{password}' CONNECTION LIMIT 16;
            GRANT USAGE ON SCHEMA {Sql.Quote(Sql.SchemaOf(database))} TO {role};
            -- The server may end the role's sessions (DROP DATABASE … WITH (FORCE) needs that); not the reverse.
            GRANT {role} TO CURRENT_USER;
            """, cancellationToken);
        return (role, password);
    }

    /// <summary>Drops the database's schema, its tables, its roles and its rows of the due index, in a delete's (or a clearing publish's) transaction.</summary>
    public async Task DropAsync(DatabaseTransaction transaction, string database, CancellationToken cancellationToken)
    {
        await transaction.ExecuteAsync($"DROP SCHEMA IF EXISTS {Sql.Quote(Sql.SchemaOf(database))} CASCADE", cancellationToken);
        foreach (var reader in Enum.GetValues<SqlReader>())
        {
            var roleName = Sql.ReaderRoleOf(dataSource, database, reader);
            await transaction.ExecuteAsync($"""
                DO $$ BEGIN
                    IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{roleName}') THEN
                        DROP ROLE {Sql.Quote(roleName)};
                    END IF;
                END $$;
                """, cancellationToken);
        }
        // Its scheduled tables' rows of the due index go with these, by their foreign key.
        await transaction.ExecuteAsync(ForgetSql, cancellationToken, ("db", database));
        await transaction.ExecuteAsync(ForgetReaderSql, cancellationToken, ("db", database));
    }

    /// <summary>The migrations of the changed tables; what no migration does goes to <paramref name="differences"/>.</summary>
    private static List<TableMigration> Migrations(Dictionary<string, string> existing, IReadOnlyList<TableSchema> tables, Typespace typespace, List<string> differences)
    {
        var migrations = new List<TableMigration>();
        var published = tables.ToDictionary(t => t.Name, StringComparer.Ordinal);
        foreach (var (name, definition) in existing.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            if (!published.TryGetValue(name, out var table))
            {
                differences.Add($"table {name} would be removed");
            }
            else if (table.Definition(typespace) != definition && TableMigration.Plan(definition, table, typespace, differences) is { } migration)
            {
                migrations.Add(migration);
            }
        }
        return migrations;
    }

    /// <summary>
    /// Runs the migrations with a lock timeout: adding a column locks its table whole, and an index
    /// blocks its writes, until the publish commits; waiting behind a long transaction would queue
    /// every later reader and writer of the table behind the publish, so it gives up instead.
    /// (<c>CREATE INDEX CONCURRENTLY</c> would not block writes but cannot run in the publish's
    /// transaction, which keeps a migration all or nothing.)
    /// </summary>
    private static async Task MigrateAsync(DatabaseTransaction transaction, List<TableMigration> migrations, Typespace typespace, TimeSpan lockTimeout, CancellationToken cancellationToken)
    {
        if (migrations.Count == 0)
        {
            return;
        }
        await transaction.ExecuteAsync($"SET LOCAL lock_timeout = {Math.Max(1, (long)lockTimeout.TotalMilliseconds)}", cancellationToken);
        foreach (var migration in migrations)
        {
            try
            {
                await migration.ApplyAsync(transaction, typespace, cancellationToken);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.LockNotAvailable)
            {
                throw new TableBusyException(migration.TableName, lockTimeout, e);
            }
            catch (PostgresException e) when (!cancellationToken.IsCancellationRequested)
            {
                throw new MigrationFailedException(migration.TableName, e.MessageText + (e.Detail is null ? "" : $" ({e.Detail})"), e);
            }
        }
        await transaction.ExecuteAsync("SET LOCAL lock_timeout TO DEFAULT", cancellationToken);
    }
}
