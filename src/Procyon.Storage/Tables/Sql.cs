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

    /// <summary>The LISTEN/NOTIFY channel scheduled tables wake the schedulers on (payload: the schema).</summary>
    public const string ScheduleChannel = "procyon_schedule";

    /// <summary>The Postgres schema that holds a database's tables.</summary>
    public static string SchemaOf(string database) => "db_" + database;

    /// <summary>
    /// The login role the read-only SQL endpoint of a database runs as. Roles belong to the whole
    /// Postgres cluster, so the name covers the Postgres database too; hashed, as role names stop at 63 bytes.
    /// </summary>
    public static string ReaderRoleOf(Npgsql.NpgsqlDataSource dataSource, string database) =>
        "procyon_read_" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(
            $"{new Npgsql.NpgsqlConnectionStringBuilder(dataSource.ConnectionString).Database}/{database}")))[..24];
}
