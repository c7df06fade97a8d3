using System.Text.RegularExpressions;

namespace Procyon.Server.Api;

internal static partial class DatabaseName
{
    public const string Rule = "1 to 63 characters: lowercase letters, digits, '-' and '_', starting with a letter or digit";

    public static bool IsValid(string name) => Pattern().IsMatch(name);

    [GeneratedRegex("^[a-z0-9][a-z0-9_-]{0,62}$")]
    private static partial Regex Pattern();
}
