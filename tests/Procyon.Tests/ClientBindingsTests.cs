using Procyon.Testing;
using Procyon.Tests.Infrastructure;

namespace Procyon.Tests;

/// <summary>
/// <c>procyon generate</c>: the TypeScript bindings for the example module compile with
/// <c>tsc --strict</c> and the C# ones with the repository's rules, and small programs using them
/// (tests/clients) call <c>add</c> and <c>echo_order</c>, subscribe, and get a reducer's error;
/// the ported module's bindings (anonymous products in variants) compile beside them.
/// </summary>
public sealed class ClientBindingsTests : OwnServerTest, IDisposable
{
    private static readonly string Clients = Path.Combine(Modules.RepositoryRoot(), "tests", "clients");
    private readonly string _home = Directory.CreateTempSubdirectory("procyon-cli-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    // ported: enum variants with named fields and several values, schedules, a table without a key.
    protected override IEnumerable<(string Database, string Module)> Published => [("example", "example"), ("ported", "ported")];

    [Fact]
    public async Task The_TypeScript_client_compiles_strictly_and_calls_subscribes_and_fails_as_typed()
    {
        Assert.True(Directory.Exists(Path.Combine(Clients, "node_modules")), "run `npm ci` in tests/clients first (./deploy/test.sh does)");
        await GenerateAsync("typescript", Path.Combine(Clients, "generated"));
        await ToolProcess.RunAsync("node", [Path.Combine("node_modules", "typescript", "bin", "tsc"), "-p", "."], Clients);

        var lines = await ToolProcess.RunAsync("node", [Path.Combine("out", "check.js"), Server.Address.ToString(), await Server.OwnerTokenAsync()], Clients);

        Assert.Contains("add: 5", lines);
        Assert.Contains(lines, line => line.StartsWith("echo_order: {\"id\":\"18446744073709551615\",", StringComparison.Ordinal) && line.Contains("\"status\":{\"Shipped\":\"2026-01-02T03:04:05.000006Z\"}", StringComparison.Ordinal));
        Assert.Contains("echo_uuid: 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", lines);
        Assert.Contains("subscribe: add 42", lines);
        Assert.Contains("add_person: 422 name must not be empty", lines);
    }

    [Fact]
    public async Task The_CSharp_client_compiles_with_the_repositorys_rules_and_calls_subscribes_and_fails_as_typed()
    {
        var project = Path.Combine(Clients, "csharp");
        await GenerateAsync("csharp", Path.Combine(project, "generated"));
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        await ToolProcess.RunAsync(dotnet, ["build", "--nologo", "-v", "quiet", "-c", CliProcess.Configuration], project, TimeSpan.FromMinutes(5));
        var program = Path.Combine(project, "bin", CliProcess.Configuration, new DirectoryInfo(AppContext.BaseDirectory).Name, "ClientCheck.dll");

        var lines = await ToolProcess.RunAsync(dotnet, [program, Server.Address.ToString(), await Server.OwnerTokenAsync()], project);

        Assert.Contains("add: 5", lines);
        Assert.Contains(lines, line => line.StartsWith("echo_order: 18446744073709551615 tea Shipped { Value = ", StringComparison.Ordinal) && line.EndsWith("same: True", StringComparison.Ordinal));
        Assert.Contains("echo_uuid: 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b ticket: none", lines);
        Assert.Contains("subscribe: add 42", lines);
        Assert.Contains("add_person: 422 name must not be empty", lines);
    }

    /// <summary>Writes the example's bindings, used by the program, and the ported module's, which must compile beside them.</summary>
    private async Task GenerateAsync(string language, string directory)
    {
        foreach (var (database, counts) in ((string, string)[])[("example", "17 functions, 7 types"), ("ported", "functions, ")])
        {
            var (exitCode, output, errors) = await CliProcess.RunAsync(Server.Address, _home, "generate", "--lang", language, "--db", database, "--out", directory);
            Assert.True(exitCode == 0, errors);
            Assert.Contains(counts, output, StringComparison.Ordinal);
        }
    }
}
