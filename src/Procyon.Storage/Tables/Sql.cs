namespace Procyon.Storage.Tables;

/// <summary>The one place identifiers enter SQL: always double-quoted, quotes doubled.</summary>
public static class Sql
{
    public static string Quote(string identifier) =>
        identifier.Contains('\0', StringComparison.Ordinal)
            ? throw new ArgumentException("an identifier cannot contain NUL", nameof(identifier))
            : "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>The Postgres schema that holds a database's tables.</summary>
    public static string SchemaOf(string database) => "db_" + database;

    /// <summary>The role that the read-only SQL endpoint of a database runs as (hashed: role names stop at 63 bytes).</summary>
    public static string ReaderRoleOf(string database) =>
        "procyon_read_" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(database)))[..24];
}
