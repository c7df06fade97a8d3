using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using Procyon.Runtime;
using Procyon.Testing;
using Xunit.Abstractions;
using static Procyon.Tests.Problems;

namespace Procyon.Tests;

/// <summary>
/// Publishing's costly part, wasm-opt, bounded: in number, in memory, and in time once the
/// publisher has gone. wasm-opt is stood in for by shell scripts that sleep, report their limit or fail.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class PublishLimitsTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly DirectoryInfo _scripts = Directory.CreateTempSubdirectory("procyon-wasm-opt-");
    private TestDatabase? _database;
    private TestServer? _server;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
        _scripts.Delete(recursive: true);
    }

    [Fact]
    public async Task A_publisher_that_goes_away_mid_wasm_opt_leaves_no_wasm_opt_running_and_frees_its_turn()
    {
        var pidFile = Path.Combine(_scripts.FullName, "pid");
        var server = await StartAsync($"echo $$ > {pidFile}\nexec sleep 300", "--Procyon:Runtime:MaxConcurrentPrepares=1", "--Procyon:Runtime:MaxQueuedPrepares=0");

        foreach (var attempt in (int[])[1, 2])
        {
            File.Delete(pidFile);
            using var goAway = new CancellationTokenSource();
            var publish = PublishAsync(server, $"gone{attempt}", goAway.Token);
            await ScheduledTablesTests.EventuallyAsync(() => Task.FromResult(File.Exists(pidFile) && new FileInfo(pidFile).Length > 0));
            var pid = int.Parse((await File.ReadAllTextAsync(pidFile)).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(IsRunning(pid));

            await goAway.CancelAsync();
            var gone = Stopwatch.StartNew();

            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => publish);
            await ScheduledTablesTests.EventuallyAsync(() => Task.FromResult(!IsRunning(pid)));
            output.WriteLine($"publish {attempt}: wasm-opt (pid {pid}) gone {gone.ElapsedMilliseconds} ms after the publisher disconnected");
        }
    }

    [Fact]
    public async Task Publishes_beyond_the_running_and_the_queued_get_503_with_Retry_After_and_the_rest_publish()
    {
        var server = await StartAsync("sleep 2\nexec wasm-opt \"$@\"", "--Procyon:Runtime:MaxConcurrentPrepares=1", "--Procyon:Runtime:MaxQueuedPrepares=1");
        await server.OwnerTokenAsync();

        var publishes = Enumerable.Range(0, 3).Select(async i =>
        {
            var elapsed = Stopwatch.StartNew();
            var response = await server.PublishAsync($"busy{i}", "example");
            return (Response: response, elapsed.Elapsed);
        }).ToList();
        var answers = await Task.WhenAll(publishes);

        Assert.Equal(2, answers.Count(a => a.Response.StatusCode == HttpStatusCode.Created));
        var (refused, after) = Assert.Single(answers, a => a.Response.StatusCode == HttpStatusCode.ServiceUnavailable);
        Assert.Equal("1", refused.Headers.GetValues("Retry-After").Single());
        Assert.Contains("MaxConcurrentPrepares", (await AssertProblemAsync(refused, HttpStatusCode.ServiceUnavailable)).Detail());
        var published = answers.Where(a => a.Response.StatusCode == HttpStatusCode.Created).Select(a => a.Elapsed).ToList();
        Assert.True(after < published.Min(), $"the refusal took {after}, as long as a publish");
        output.WriteLine($"3 publishes at once, 1 running and 1 queued allowed: 503 after {after.TotalMilliseconds:0} ms, the others 201 after {published.Min().TotalMilliseconds:0} and {published.Max().TotalMilliseconds:0} ms");
    }

    [Fact]
    public async Task A_wasm_opt_beyond_its_memory_limit_fails_the_publish_with_400_naming_the_limit()
    {
        // Says the address-space limit it runs under (in KiB), then dies as wasm-opt does when an allocation fails.
        var server = await StartAsync("echo \"limit $(ulimit -v)\" >&2\nkill -ABRT $$", "--Procyon:Runtime:PrepareMemoryBytes=33554432");

        var elapsed = Stopwatch.StartNew();
        var problem = await AssertProblemAsync(await server.PublishAsync("starved", "example"), HttpStatusCode.BadRequest);
        output.WriteLine($"400 after {elapsed.ElapsedMilliseconds} ms: {problem.Detail()}");

        Assert.Contains("ran out of memory", problem.Detail());
        Assert.Contains("33554432 bytes (Procyon:Runtime:PrepareMemoryBytes)", problem.Detail());
        Assert.Contains("limit 32768", problem.Detail());
        Assert.Equal("Healthy", await server.Http.GetStringAsync("/healthz"));
    }

    [Fact]
    public async Task Bytes_published_before_are_not_rewritten_again_whoever_publishes_them_where()
    {
        var runs = Path.Combine(_scripts.FullName, "runs");
        var server = await StartAsync($"echo run >> {runs}\nexec wasm-opt \"$@\"");
        var (_, other) = await server.NewIdentityAsync();

        var elapsed = Stopwatch.StartNew();
        (await server.PublishAsync("first", "example")).EnsureSuccessStatusCode();
        var rewriting = elapsed.Elapsed;
        elapsed.Restart();
        (await server.PublishAsync("second", "example", other)).EnsureSuccessStatusCode();
        output.WriteLine($"the example module: {rewriting.TotalMilliseconds:0} ms to publish with the rewrite, {elapsed.Elapsed.TotalMilliseconds:0} ms to another database without");
        (await server.PublishAsync("first", "example")).EnsureSuccessStatusCode();
        Assert.Single(await File.ReadAllLinesAsync(runs));
        (await server.PublishAsync("third", "ledger")).EnsureSuccessStatusCode();
        Assert.Equal(2, (await File.ReadAllLinesAsync(runs)).Length);

        var answer = await server.CallAsync("second", "add", "[2, 3]");
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal("5", await answer.Content.ReadAsStringAsync());
    }

    [Fact]
    public void Wasm_opt_runs_under_prlimits_address_space_limit_or_without_prlimit_directly()
    {
        var options = new RuntimeOptions { WasmOptPath = "/opt/wasm-opt", PrepareMemoryBytes = 1 << 30 };

        var limited = new WasmOptCommand(options, "/usr/bin/prlimit").StartInfo(["in.wasm"]);
        var unlimited = new WasmOptCommand(options, prlimit: null).StartInfo(["in.wasm"]);

        Assert.Equal("/usr/bin/prlimit", limited.FileName);
        Assert.Equal((string[])["--as=1073741824", "--", "/opt/wasm-opt", "in.wasm"], limited.ArgumentList);
        Assert.Equal("/opt/wasm-opt", unlimited.FileName);
        Assert.Equal((string[])["in.wasm"], unlimited.ArgumentList);
    }

    private static async Task<HttpResponseMessage> PublishAsync(ServerHandle server, string database, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, $"/v1/databases/{database}")
        {
            Content = new ByteArrayContent(await File.ReadAllBytesAsync(Modules.PathOf("example"), cancellationToken)),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await server.OwnerTokenAsync());
        return await server.Http.SendAsync(request, cancellationToken);
    }

    /// <summary>A server on a database of its own whose wasm-opt is a shell script of <paramref name="wasmOpt"/>.</summary>
    private async Task<TestServer> StartAsync(string wasmOpt, params string[] settings)
    {
        var script = await WasmOptScript.WriteAsync(_scripts.FullName, wasmOpt);
        _database = await TestDatabase.CreateAsync();
        _server = await TestServer.StartAsync(_database, [$"--Procyon:Runtime:WasmOptPath={script}", .. settings]);
        return _server;
    }

    /// <summary>Whether the process lives (a zombie no longer does: it has ended and only waits to be reaped).</summary>
    private static bool IsRunning(int pid)
    {
        var stat = $"/proc/{pid}/stat";
        return File.Exists(stat) && File.ReadAllText(stat).Split(") ")[^1][0] != 'Z';
    }
}
