using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Procyon.Cli;

/// <summary>
/// The identity and token kept per server in <c>procyon/credentials.json</c> under the user's
/// config directory (<c>$XDG_CONFIG_HOME</c>, else <c>~/.config</c>), readable by the user alone.
/// </summary>
internal sealed record Credentials(string Identity, string Token)
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static string FilePath =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.ApplicationData, Environment.SpecialFolderOption.Create), "procyon", "credentials.json");

    public static Credentials? Find(Uri server) =>
        Load()[Key(server)] is JsonObject saved && saved["identity"]?.GetValue<string>() is { } identity && saved["token"]?.GetValue<string>() is { } token
            ? new Credentials(identity, token)
            : null;

    public static void Save(Uri server, Credentials? credentials)
    {
        var all = Load();
        if (credentials is null)
        {
            all.Remove(Key(server));
        }
        else
        {
            all[Key(server)] = new JsonObject { ["identity"] = credentials.Identity, ["token"] = credentials.Token };
        }
        var directory = Path.GetDirectoryName(FilePath)!;
        Directory.CreateDirectory(directory);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        // Written beside the file with the user's permissions only, then moved over it.
        var temporary = FilePath + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using (var file = new FileStream(temporary, options))
        {
            file.Write(Encoding.UTF8.GetBytes(all.ToJsonString(Indented)));
        }
        File.Move(temporary, FilePath, overwrite: true);
    }

    /// <summary>The identity a Procyon token names (its <c>sub</c>); the server checks the token itself.</summary>
    public static string IdentityOf(string token)
    {
        var parts = token.Split('.');
        if (parts.Length != 3)
        {
            throw new CliException("that is not a Procyon token (a JWT: three base64url parts separated by dots)");
        }
        try
        {
            var payload = parts[1].Replace('-', '+').Replace('_', '/');
            payload = payload.PadRight(payload.Length + ((4 - (payload.Length % 4)) % 4), '=');
            using var claims = JsonDocument.Parse(Convert.FromBase64String(payload));
            return claims.RootElement.GetProperty("sub").GetString() ?? throw new FormatException();
        }
        catch (Exception e) when (e is FormatException or JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new CliException("that is not a Procyon token: its payload names no identity (sub)");
        }
    }

    private static string Key(Uri server) => server.GetLeftPart(UriPartial.Authority);

    private static JsonObject Load()
    {
        try
        {
            return File.Exists(FilePath) ? JsonNode.Parse(File.ReadAllText(FilePath)) as JsonObject ?? [] : [];
        }
        catch (JsonException)
        {
            throw new CliException($"{FilePath} is not valid JSON: fix or remove it");
        }
    }
}
