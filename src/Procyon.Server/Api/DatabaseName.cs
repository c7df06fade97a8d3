using System.Text.RegularExpressions;
using Procyon.Storage.Tables;

namespace Procyon.Server.Api;

internal static partial class DatabaseName
{
    public static readonly string Rule =
        $"1 to {Sql.MaxDatabaseNameLength} characters: lowercase letters, digits, '-' and '_', starting with a letter or digit";

    public static bool IsValid(string name) => name.Length <= Sql.MaxDatabaseNameLength && Pattern().IsMatch(name);

    [GeneratedRegex("^[a-z0-9][a-z0-9_-]*$")]
    private static partial Regex Pattern();
}
