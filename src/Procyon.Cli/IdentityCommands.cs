using System.CommandLine;
using System.Net.Http.Json;

namespace Procyon.Cli;

/// <summary><c>login</c>, <c>logout</c> and <c>whoami</c>: the identity the other commands act as, per server.</summary>
internal static class IdentityCommands
{
    public static IEnumerable<Command> All()
    {
        var token = new Option<string>("--token") { Description = "Keep this token (from another machine, or `POST /v1/identity`) instead of creating an identity" };
        yield return CliOptions.Command("login", "Create an identity on the server and keep its token (or keep a given one)", [token], async (parse, client, cancellationToken) =>
        {
            if (parse.GetValue(token) is { } given)
            {
                Credentials.Save(client.Server, new Credentials(Credentials.IdentityOf(given), given));
            }
            else if (client.Credentials is { } kept)
            {
                throw new CliException($"already logged in to {client.Server} as {kept.Identity}; a new identity would not own its databases: `procyon logout` first if you mean it");
            }
            else
            {
                using var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/identity"), cancellationToken);
                var created = await response.Content.ReadFromJsonAsync<CreatedIdentity>(cancellationToken)
                    ?? throw new CliException("the server answered no identity");
                Credentials.Save(client.Server, new Credentials(created.Identity, created.Token));
            }
            Console.WriteLine($"Logged in to {client.Server} as {Credentials.Find(client.Server)!.Identity} (token kept in {Credentials.FilePath})");
            return 0;
        });

        yield return CliOptions.Command("logout", "Forget the token kept for the server", [], (_, client, _) =>
        {
            Credentials.Save(client.Server, null);
            Console.WriteLine(client.Credentials is { } kept
                ? $"Logged out of {client.Server}: forgot the token of {kept.Identity}"
                : $"Not logged in to {client.Server}");
            return Task.FromResult(0);
        });

        yield return CliOptions.Command("whoami", "Print the identity kept for the server", [], (_, client, _) =>
        {
            var kept = client.Credentials ?? throw new CliException($"not logged in to {client.Server}: run `procyon login`");
            Console.WriteLine($"{kept.Identity} on {client.Server}");
            return Task.FromResult(0);
        });
    }

    private sealed record CreatedIdentity(string Identity, string Token);
}
