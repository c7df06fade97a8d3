using System.Text.Json;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;

namespace Procyon.Tests;

/// <summary>The <c>procyon</c> command line, run as a process against a real server, as a user runs it.</summary>
public sealed class CliTests : OwnServerTest, IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("procyon-cli-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    private Task<(int ExitCode, string Output, string Errors)> RunAsync(params string[] arguments) =>
        CliProcess.RunAsync(Server.Address, _home, arguments);

    private async Task<string> SucceedsAsync(params string[] arguments)
    {
        var (exitCode, output, errors) = await RunAsync(arguments);
        Assert.True(exitCode == 0, $"procyon {string.Join(' ', arguments)} exited with {exitCode}: {errors}");
        return output;
    }

    private async Task<string> FailsAsync(params string[] arguments)
    {
        var (exitCode, _, errors) = await RunAsync(arguments);
        Assert.NotEqual(0, exitCode);
        Assert.DoesNotContain("   at ", errors, StringComparison.Ordinal);
        return errors;
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Login_publish_from_the_crate_directory_call_query_describe_and_delete()
    {
        var login = await SucceedsAsync("login");
        var identity = (await SucceedsAsync("whoami")).Split(' ')[0];
        Assert.Matches("^[0-9a-f]{64}$", identity);
        Assert.Contains(identity, login, StringComparison.Ordinal);
        var credentials = Path.Combine(_home, "procyon", "credentials.json");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(credentials));

        var published = await SucceedsAsync("publish", Path.Combine(Modules.RepositoryRoot(), "src", "rust", "modules", "example"), "--db", "cli-example");
        Assert.Contains("Created database 'cli-example'", published, StringComparison.Ordinal);
        Assert.Contains("procedure add(a: i32, b: i32) -> i32", published, StringComparison.Ordinal);
        Assert.Contains("public    person(", published, StringComparison.Ordinal);

        Assert.Equal("5", (await SucceedsAsync("call", "cli-example", "add", "2", "3")).Trim());
        Assert.Equal("7", (await SucceedsAsync("call", "cli-example", "add", "--json", """{"a": 3, "b": 4}""")).Trim());
        Assert.Equal("null", (await SucceedsAsync("call", "cli-example", "add_person", "\"ada\"", "36")).Trim());

        var table = (await SucceedsAsync("sql", "cli-example", "select name, age from person")).Split('\n', StringSplitOptions.TrimEntries);
        Assert.Equal("name | age", table[0]);
        Assert.Equal("ada  | 36", table[2]);
        using (var answer = JsonDocument.Parse(await SucceedsAsync("sql", "cli-example", "select count(*) as n from person", "--json")))
        {
            Assert.Equal(1, answer.RootElement.GetProperty("rows")[0][0].GetInt32());
        }

        using (var schema = JsonDocument.Parse(await SucceedsAsync("describe", "cli-example", "--json")))
        {
            var add = schema.RootElement.GetProperty("functions").EnumerateArray().Single(f => f.GetProperty("name").GetString() == "add");
            Assert.Equal("i32", add.GetProperty("returns").GetString());
        }
        Assert.Contains("cli-example", await SucceedsAsync("list"), StringComparison.Ordinal);

        Assert.Contains("Deleted database 'cli-example'", await SucceedsAsync("delete", "cli-example"), StringComparison.Ordinal);
        Assert.Contains("no database named 'cli-example'", await FailsAsync("call", "cli-example", "add", "1", "2"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Failures_exit_non_zero_with_one_line_that_says_what_to_do()
    {
        await Server.PublishAsync("faulty", "faulty");

        Assert.Contains("b: expected i32", await FailsAsync("call", "faulty", "add", "2", "\"two\""), StringComparison.Ordinal);
        Assert.Contains("argument 2 (two) is not a JSON value", await FailsAsync("call", "faulty", "add", "2", "two"), StringComparison.Ordinal);
        Assert.Contains("procyon login", await FailsAsync("publish", Modules.PathOf("faulty"), "--db", "mine"), StringComparison.Ordinal);
        Assert.Contains("not logged in", await FailsAsync("whoami"), StringComparison.Ordinal);

        await SucceedsAsync("login");
        Assert.Contains("another identity owns this database", await FailsAsync("delete", "faulty"), StringComparison.Ordinal);
        Assert.Contains("already logged in", await FailsAsync("login"), StringComparison.Ordinal);
        Assert.Contains("cannot reach the Procyon server at http://127.0.0.1:9/", await FailsAsync("list", "--server", "http://127.0.0.1:9"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_republish_that_changes_tables_is_refused_without_a_terminal_unless_yes()
    {
        await SucceedsAsync("login");
        await SucceedsAsync("publish", Modules.PathOf("example"), "--db", "changing");

        var refused = await FailsAsync("publish", Modules.PathOf("ledger"), "--db", "changing");
        Assert.Contains("table person would be removed", refused, StringComparison.Ordinal);
        Assert.Contains("--clear", refused, StringComparison.Ordinal);
        Assert.Contains("procedure add(", await SucceedsAsync("describe", "changing"), StringComparison.Ordinal);

        Assert.Contains("Updated database 'changing'", await SucceedsAsync("publish", Modules.PathOf("ledger"), "--db", "changing", "--yes"), StringComparison.Ordinal);
        Assert.DoesNotContain("procedure add(", await SucceedsAsync("describe", "changing"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Logs_follow_prints_a_line_written_after_it_started_and_subscribe_prints_results()
    {
        await SucceedsAsync("login");
        await SucceedsAsync("publish", Modules.PathOf("faulty"), "--db", "loud");
        await SucceedsAsync("call", "loud", "shouts", "1", "5");

        await using var follow = CliProcess.Start(Server.Address, _home, "logs", "loud", "--follow", "-n", "1");
        await using var subscribe = CliProcess.Start(Server.Address, _home, "subscribe", "loud", "add");
        // The line written before it started comes first, so it is following from here on.
        Assert.EndsWith(": xxxxx", await follow.NextLineAsync(), StringComparison.Ordinal);
        await WaitForAsync(() => subscribe.Errors.Contains("Subscribed to loud.add", StringComparison.Ordinal), () => subscribe.Errors);

        await SucceedsAsync("call", "loud", "shouts", "1", "7");
        await SucceedsAsync("call", "loud", "add", "20", "22");

        Assert.EndsWith(": xxxxxxx", await follow.NextLineAsync(), StringComparison.Ordinal);
        using var result = JsonDocument.Parse(await subscribe.NextLineAsync());
        Assert.Equal("add", result.RootElement.GetProperty("fn").GetString());
        Assert.Equal(42, result.RootElement.GetProperty("value").GetInt32());
    }

    private static async Task WaitForAsync(Func<bool> condition, Func<string> state)
    {
        for (var waited = 0; !condition(); waited += 50)
        {
            Assert.True(waited < 30_000, $"gave up waiting: {state()}");
            await Task.Delay(50);
        }
    }
}
