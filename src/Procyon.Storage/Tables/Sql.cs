namespace Procyon.Storage.Tables;

/// <summary>The one place identifiers enter SQL: always double-quoted, quotes doubled.</summary>
public static class Sql
{
    public static string Quote(string identifier) =>
        identifier.Contains('\0', StringComparison.Ordinal)
            ? throw new ArgumentException("an identifier cannot contain NUL", nameof(identifier))
            : "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>The host's column in scheduled tables: when the row is next due.</summary>
    public const string DueColumn = "__procyon_due";

    /// <summary>The trigger function, one per schema, that keeps <see cref="DueColumn"/> and wakes the schedulers.</summary>
    public const string DueFunction = "__procyon_due";

    /// <summary>The column of a scheduled table that counts a row's failed runs since it last ran well (its retries).</summary>
    public const string AttemptsColumn = "__procyon_attempts";

    /// <summary>The LISTEN/NOTIFY channel scheduled tables wake the schedulers on (payload: the schema).</summary>
    public const string ScheduleChannel = "procyon_schedule";

    /// <summary>Postgres's identifier limit (NAMEDATALEN − 1).</summary>
    public const int MaxIdentifierBytes = 63;

    private const string SchemaPrefix = "db_";

    /// <summary>
    /// Longest database name: its schema name must fit Postgres's 63-byte identifiers whole, since
    /// Postgres silently cuts longer ones and two databases would then share one schema.
    /// </summary>
    public static readonly int MaxDatabaseNameLength = MaxIdentifierBytes - SchemaPrefix.Length;

    /// <summary>The Postgres schema that holds a database's tables; one per name, never shared.</summary>
    public static string SchemaOf(string database) =>
        database.Length <= MaxDatabaseNameLength
            ? SchemaPrefix + database
            : throw new ArgumentException($"database names are at most {MaxDatabaseNameLength} characters", nameof(database));

    /// <summary>The database whose schema is <paramref name="schema"/>; null for any other schema.</summary>
    public static string? DatabaseOfSchema(string schema) =>
        schema.StartsWith(SchemaPrefix, StringComparison.Ordinal) ? schema[SchemaPrefix.Length..] : null;

    /// <summary>
    /// The login role the read-only SQL endpoint of a database runs as for <paramref name="reader"/>.
    /// Roles belong to the whole Postgres cluster, so the name covers the Postgres database too;
    /// hashed, as role names stop at 63 bytes.
    /// </summary>
    public static string ReaderRoleOf(Npgsql.NpgsqlDataSource dataSource, string database, SqlReader reader) =>
        ReaderRoleOf(new Npgsql.NpgsqlConnectionStringBuilder(dataSource.ConnectionString).Database!, database, reader);

    /// <param name="postgresDatabase">The Postgres database the server's catalog lives in.</param>
    public static string ReaderRoleOf(string postgresDatabase, string database, SqlReader reader) =>
        (reader == SqlReader.Owner ? "procyon_read_" : "procyon_public_")
        + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{postgresDatabase}/{database}")))[..24];
}

/// <summary>Who reads a database through the SQL endpoint: its owner (every table) or anyone else (public tables).</summary>
public enum SqlReader
{
    Owner,
    Public,
}
