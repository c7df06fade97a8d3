using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;
using static Procyon.Tests.Problems;
using static Procyon.Tests.Slots;

namespace Procyon.Tests;

/// <summary>
/// What one caller, one database or one module may hold of the server: calls in flight, memory,
/// databases, identities, log bytes, threads. Each limit answers with a status the caller can act on.
/// In the timing collection: the CPU test measures latencies, and the others wait on sleeping calls.
/// </summary>
[Collection(TimingCollection.Name)]
public sealed class BudgetTests() : OwnServerTest(
    "--Procyon:Runtime:MaxCallsPerIdentity=4",
    "--Procyon:Runtime:MaxCallsPerDatabase=6",
    "--Procyon:Runtime:MaxDatabasesPerIdentity=3",
    "--Procyon:Runtime:LogBytesPerDatabase=65536",
    "--Procyon:Auth:IdentitiesPerMinute=20")
{
    protected override IEnumerable<(string Database, string Module)> Published => [("faulty", "faulty"), ("example", "example")];

    [Fact]
    public async Task Calls_in_flight_are_capped_per_identity_with_429_and_per_database_with_503()
    {
        var (_, token) = await Server.NewIdentityAsync();
        var anonymous = new Holders(4, () => Server.CallAsync("faulty", "naps", "[1, 3000]"));

        var tooMany = await FirstAsync(() => Server.CallAsync("faulty", "add", "[1, 2]"), HttpStatusCode.TooManyRequests, anonymous);
        var withToken = new Holders(2, () => CallAsync("faulty", "naps", "[1, 3000]", token));
        var busy = await FirstAsync(() => CallAsync("faulty", "add", "[1, 2]", token), HttpStatusCode.ServiceUnavailable, withToken);

        Assert.Contains("calls without a token already have 4 calls in flight", (await AssertProblemAsync(tooMany, HttpStatusCode.TooManyRequests)).Detail());
        Assert.Equal("1", tooMany.Headers.RetryAfter?.ToString());
        Assert.Contains("database 'faulty' has 6 calls in flight", (await AssertProblemAsync(busy, HttpStatusCode.ServiceUnavailable)).Detail());
        Assert.Equal("5", await (await CallAsync("example", "add", "[2, 3]", token)).Content.ReadAsStringAsync());
        Assert.All(await Task.WhenAll(anonymous.Calls.Concat(withToken.Calls)), r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal("3", await (await Server.CallAsync("faulty", "add", "[1, 2]")).Content.ReadAsStringAsync());
    }

    /// <summary>A call's CPU deadline counts from its turn to run: waiting behind the database's other calls is not running.</summary>
    [Fact]
    public async Task Calls_queued_for_their_turn_to_run_are_not_timed_out_by_the_wait()
    {
        // One call of the database runs at a time; two dozen of about 20 ms wait up to half a second for their turn.
        await using var server = await TestServer.StartAsync(Database, "--Procyon:Runtime:MaxRunningCallsPerDatabase=1", "--Procyon:Runtime:CallTimeout=00:00:00.300");

        var answers = await Task.WhenAll(Enumerable.Range(0, 24).Select(_ => server.CallAsync("faulty", "crunches", "[60000]")));
        // Nor does sleeping: a nap three times the deadline wakes (and rewinds its stack) under a fresh one.
        using var nap = await server.CallAsync("faulty", "naps", "[1, 900]");

        Assert.All(answers, answer => Assert.Equal(HttpStatusCode.OK, answer.StatusCode));
        Assert.Equal(HttpStatusCode.OK, nap.StatusCode);
    }

    [Fact]
    public async Task A_call_growing_past_the_memory_budget_gets_503_while_small_calls_go_on_and_grows_again_after()
    {
        // Another server on the same catalog: it loads faulty, with a budget that holds one hoarder, not two
        // (a call may grow into half of what is left). Its wasm runs one call at a time and on instances made
        // beforehand, so no call finds the room set aside for another's growth: each refusal below is for
        // memory a sleeper holds.
        await using var server = await TestServer.StartAsync(
            Database, $"--Procyon:Runtime:MaxTotalMemoryBytes={40 << 20}", "--Procyon:Runtime:MaxMemoryBytes=33554432", "--Procyon:Runtime:MaxRunningCallsPerDatabase=1");
        Assert.All(await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => server.CallAsync("faulty", "naps", "[1, 300]"))), r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        var hoarder = new Holders(1, () => server.CallAsync("faulty", "hoards", "[14, 3000]"));

        var refused = await FirstAsync(() => server.CallAsync("faulty", "hoards", "[14, 0]"), HttpStatusCode.ServiceUnavailable, hoarder);

        var detail = (await AssertProblemAsync(refused, HttpStatusCode.ServiceUnavailable)).Detail();
        Assert.Contains("the call needed more memory than the server had left (out of memory: an allocation of 14680064 bytes failed)", detail);
        Assert.Contains("Procyon:Runtime:MaxTotalMemoryBytes", detail);
        Assert.Equal("1", refused.Headers.RetryAfter?.ToString());
        Assert.Equal("3", await (await server.CallAsync("faulty", "add", "[1, 2]")).Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await Assert.Single(hoarder.Calls)).StatusCode);
        // The hoarder's instance went back to the pool; a call that needs the room drops it.
        Assert.Equal(HttpStatusCode.OK, (await server.CallAsync("faulty", "hoards", "[14, 0]")).StatusCode);
    }

    [Fact]
    public async Task A_call_whose_new_instance_would_not_fit_in_the_memory_budget_gets_503()
    {
        // A module whose memory starts at 24 MiB, on servers that keep no idle instance: every call makes one.
        var module = new HandmadeModule().Function("touch", HandmadeModule.Struct());
        var settings = (string[])["--Procyon:Runtime:MaxMemoryBytes=33554432", "--Procyon:Runtime:MaxIdleInstances=0"];
        await using var tight = await TestServer.StartAsync(Database, [$"--Procyon:Runtime:MaxTotalMemoryBytes={40 << 20}", .. settings]);
        // Loading is the server's own work: publishing is not held to the budget.
        (await tight.PublishBytesAsync("roomy", module.ToWasm(memoryPages: 384))).EnsureSuccessStatusCode();

        var refused = await tight.CallAsync("roomy", "touch", "[]");

        Assert.Contains("a new instance needed more memory than the server had left", (await AssertProblemAsync(refused, HttpStatusCode.ServiceUnavailable)).Detail());
        Assert.Equal("1", refused.Headers.RetryAfter?.ToString());
        // Half of a 64 MiB budget has room for its 24 MiB (and 1 MiB more for preinit).
        await using var roomier = await TestServer.StartAsync(Database, [$"--Procyon:Runtime:MaxTotalMemoryBytes={64 << 20}", .. settings]);
        Assert.Equal(HttpStatusCode.OK, (await roomier.CallAsync("roomy", "touch", "[]")).StatusCode);
    }

    [Fact]
    public async Task An_identity_owns_at_most_its_share_of_databases_and_identities_are_not_free()
    {
        var (_, token) = await Server.NewIdentityAsync();
        foreach (var name in (string[])["mine-1", "mine-2", "mine-3"])
        {
            Assert.Equal(HttpStatusCode.Created, (await Server.PublishAsync(name, "faulty", token)).StatusCode);
        }

        var problem = await AssertProblemAsync(await Server.PublishAsync("mine-4", "faulty", token), HttpStatusCode.Forbidden);

        Assert.Contains("owns 3 databases", problem.Detail());
        Assert.Equal(HttpStatusCode.OK, (await Server.PublishAsync("mine-1", "faulty", token)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await Server.DeleteAsync("mine-1", token)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await Server.PublishAsync("mine-4", "faulty", token)).StatusCode);
        var created = new List<HttpStatusCode>();
        for (var i = 0; i < 25; i++)
        {
            using var response = await Server.Http.PostAsync("/v1/identity", null);
            created.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                Assert.NotNull(response.Headers.RetryAfter);
                await AssertProblemAsync(response, HttpStatusCode.TooManyRequests);
            }
        }
        Assert.Contains(HttpStatusCode.TooManyRequests, created);
    }

    [Fact]
    public async Task Log_lines_are_cut_and_a_databases_log_is_capped_in_bytes()
    {
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("faulty", "shouts", "[100, 20000]")).StatusCode);

        var lines = JsonDocument.Parse(await Server.LogsAsync("faulty")).RootElement.EnumerateArray().Select(l => l.GetProperty("message").GetString()!).ToList();

        Assert.All(lines, line => Assert.Equal(4096, line.Length));
        Assert.InRange(lines.Count, 1, 65536 / (2 * 4096));
    }

    [Fact]
    public async Task Calls_spinning_the_CPU_of_one_database_leave_health_checks_and_other_databases_answering()
    {
        await using var server = await ServerProcess.StartAsync(Database, "--Procyon:Runtime:CallTimeout=00:00:03", "--Procyon:Runtime:MaxCallsPerIdentity=1000", "--Procyon:Runtime:MaxTurnWait=00:00:10");
        (await server.PublishAsync("spinner", "faulty")).EnsureSuccessStatusCode();
        (await server.PublishAsync("other", "example")).EnsureSuccessStatusCode();
        using var client = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(60) };

        var spinners = Enumerable.Range(0, 100).Select(_ => client.PostAsync("/v1/databases/spinner/call/spins", new StringContent("[]"))).ToList();
        await Task.Delay(500);
        var latencies = new List<double>();
        for (var i = 0; i < 40; i++)
        {
            var stopwatch = Stopwatch.StartNew();
            using var health = await client.GetAsync("/healthz");
            using var add = await client.PostAsync("/v1/databases/other/call/add", new StringContent("[2, 3]"));
            latencies.Add(stopwatch.Elapsed.TotalMilliseconds / 2);
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            Assert.Equal("5", await add.Content.ReadAsStringAsync());
            await Task.Delay(25);
        }

        latencies.Sort();
        // The 95th percentile: of 40 probes, one may meet a hiccup of the machine (a 300–450 ms
        // outlier in two CI runs among probes otherwise under 40 ms); starved probes would all be slow.
        var p95 = latencies[(int)Math.Ceiling(latencies.Count * 0.95) - 1];
        Assert.True(p95 < 100, $"p95 {p95:0.0} ms: {string.Join(", ", latencies.Select(l => l.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture)))}");
        // Each spinner runs out its CPU deadline (504), or waits longer than MaxTurnWait for its turn to run (503).
        Assert.All(await Task.WhenAll(spinners), r => Assert.Contains(r.StatusCode, (HttpStatusCode[])[HttpStatusCode.GatewayTimeout, HttpStatusCode.ServiceUnavailable]));
    }

    private async Task<HttpResponseMessage> CallAsync(string database, string function, string json, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/databases/{database}/call/{function}") { Content = new StringContent(json) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await Server.Http.SendAsync(request);
    }
}
