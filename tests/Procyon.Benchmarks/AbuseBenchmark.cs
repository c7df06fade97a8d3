using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Procyon.Sats;
using Procyon.Testing;
using static Procyon.Testing.HandmadeModule;

namespace Procyon.Benchmarks;

/// <summary>
/// Attacks and faults against one real server process, each beside the same healthy calls made
/// with no attacker: what each tried, what the server answered, how long it took to recover, the
/// healthy calls' p99 before and during, and whether committed data or scheduled rows were lost.
/// Prints one table for the README.
/// </summary>
internal static class AbuseBenchmark
{
    /// <summary>How long the healthy calls are measured with no attacker, before each attack.</summary>
    private static readonly TimeSpan Baseline = TimeSpan.FromSeconds(1);

    public static async Task<int> RunAsync(int attackers)
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var proxy = PostgresProxy.Start(database);
        await using var server = await ServerProcess.StartAsync(
            database,
            $"--ConnectionStrings:Postgres={proxy.ConnectionStringFor(database)}",
            "--Procyon:Runtime:CallTimeout=00:00:02",
            "--Procyon:Runtime:TransactionTimeout=00:00:03",
            $"--Procyon:Runtime:MaxTotalMemoryBytes={1L << 30}");
        var (_, attacker) = await server.NewIdentityAsync();
        (await server.PublishAsync("attacker", "ledger", attacker)).EnsureSuccessStatusCode();
        (await server.PublishAsync("attacker-faulty", "faulty", attacker)).EnsureSuccessStatusCode();
        (await server.PublishAsync("healthy", "ledger")).EnsureSuccessStatusCode();
        (await server.PublishAsync("example", "example")).EnsureSuccessStatusCode();
        var healthy = new HealthyCalls(server, (await server.NewIdentityAsync()).Token);
        await healthy.MeasureAsync(Baseline);

        var rows = new List<string[]>
        {
            await AttackAsync(healthy, "transactions held by table calls in a loop", $"{attackers} × with_tx looping count()",
                () => CallManyAsync(server, attackers, "attacker", "hold", "")),
            await AttackAsync(healthy, "CPU spun by one database", $"{attackers} × spins until the CPU deadline (2 s)",
                () => CallManyAsync(server, attackers, "attacker-faulty", "spins", "")),
            await AttackAsync(healthy, "anonymous sleepers", $"{attackers * 20} × sleep 1 s, no token",
                () => CallManyAsync(server, attackers * 20, "attacker-faulty", "naps", "[1, 1000]")),
            await HoardersAsync(healthy, server, attackers, attacker),
            await AttackAsync(healthy, "hostile module descriptions", "3 hand-made modules: 100-deep type, 2^31 types, ref cycle",
                () => PublishHostileAsync(server, attacker)),
            await AttackAsync(healthy, "SQL answers of any size", $"{attackers} × 5 rows of 50 MB, no token",
                () => QueryManyAsync(server, attackers, "SELECT repeat('x', 50000000) FROM generate_series(1, 5)")),
            await AttackAsync(healthy, "SQL sessions held", $"{attackers * 4} × pg_sleep(2), no token",
                () => QueryManyAsync(server, attackers * 4, "SELECT pg_sleep(2)")),
            await StalledSubscriberAsync(healthy, server, attackers),
            await OutageAsync(healthy, server, proxy, attackers),
        };

        Console.WriteLine("| attack or fault | tried | server answered | recovery | healthy p99 ms (quiet → during) | lost |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var row in rows)
        {
            Console.WriteLine($"| {string.Join(" | ", row)} |");
        }
        return 0;
    }

    /// <summary>Runs an attack while the healthy calls go on; the recovery is how long the last attacking call took.</summary>
    private static async Task<string[]> AttackAsync(HealthyCalls healthy, string name, string tried, Func<Task<List<HttpStatusCode>>> attack)
    {
        var quiet = await healthy.MeasureAsync(Baseline);
        var stopwatch = Stopwatch.StartNew();
        var attacking = attack();
        var during = await healthy.MeasureWhileAsync(attacking);
        var statuses = await attacking;
        var lost = await healthy.LostAsync();
        return [name, tried, Counts(statuses), $"all answered in {stopwatch.Elapsed.TotalSeconds:0.0} s", $"{quiet:0.0} → {during:0.0}", lost];
    }

    /// <summary>Sleepers that each hold 24 MiB: the server's resident memory stays near the 1 GiB budget, whoever is admitted.</summary>
    private static async Task<string[]> HoardersAsync(HealthyCalls healthy, ServerProcess server, int attackers, string attacker)
    {
        await using var peaks = new Measure.Peaks(server.ProcessId);
        var row = await AttackAsync(healthy, "memory held by sleepers", $"{attackers} × hold 24 MiB for 2 s (budget 1 GiB)",
            () => CallManyAsync(server, attackers, "attacker-faulty", "hoards", "[24, 2000]", attacker));
        row[2] += $"; server RSS peaked at {peaks.RssBytes >> 20} MiB";
        return row;
    }

    /// <summary>
    /// Postgres away for 3 s under the server, with scheduled rows due meanwhile: calls that need
    /// it fail fast, and afterwards every committed write and every scheduled row is there once.
    /// </summary>
    private static async Task<string[]> OutageAsync(HealthyCalls healthy, ServerHandle server, PostgresProxy proxy, int attackers)
    {
        var quiet = await healthy.MeasureAsync(Baseline);
        (await server.CallAsync("healthy", "schedule_hits", $"[{attackers * 10}, 500, 2000]")).EnsureSuccessStatusCode();
        proxy.Cut();
        var during = await healthy.MeasureAsync(TimeSpan.FromSeconds(3));
        var statuses = healthy.TakeStatuses();
        proxy.Restore();
        var down = Stopwatch.StartNew();
        while ((await server.CallAsync("healthy", "counter_value", "")).StatusCode != HttpStatusCode.OK)
        {
            await Task.Delay(20);
        }
        var recovered = down.Elapsed;
        while (await healthy.ScalarAsync("SELECT count(*) FROM db_healthy.hit") > 0)
        {
            await Task.Delay(100);
        }
        var hits = await healthy.ScalarAsync("SELECT count(DISTINCT hit) FROM db_healthy.hit_log");
        var runs = await healthy.ScalarAsync("SELECT count(*) FROM db_healthy.hit_log");
        var lost = await healthy.LostAsync();
        return
        [
            "Postgres away for 3 s", $"healthy calls meanwhile; {attackers * 10} scheduled rows due during it",
            Counts(statuses), $"calls answered again {recovered.TotalMilliseconds:0} ms after Postgres was back", $"{quiet:0.0} → {during:0.0} (failing fast)",
            $"{lost}; scheduled rows run {runs} times for {hits} of {attackers * 10}",
        ];
    }

    /// <summary>
    /// A subscriber that never reads, while public results of about 500 KB are made: the server
    /// closes it once its outbox is full, and nobody else waits for it.
    /// </summary>
    private static async Task<string[]> StalledSubscriberAsync(HealthyCalls healthy, ServerHandle server, int attackers)
    {
        var quiet = await healthy.MeasureAsync(Baseline);
        await using var stalled = await StalledSubscriber.StartAsync(server, "Subscribe");
        var stopwatch = Stopwatch.StartNew();
        var attacking = CallManyAsync(server, attackers * 5, "example", "greet", $$"""{"name": "{{new string('x', 1000)}}", "times": 500}""");
        var during = await healthy.MeasureWhileAsync(attacking);
        var statuses = await attacking;
        var closed = await stalled.ClosedAsync(TimeSpan.FromSeconds(5));
        var lost = await healthy.LostAsync();
        return
        [
            "a hub subscriber that stops reading", $"{attackers * 5} public results of 500 KB while it never reads",
            $"{Counts(statuses)}; its connection {(closed ? "closed" : "still open")}", $"all answered in {stopwatch.Elapsed.TotalSeconds:0.0} s", $"{quiet:0.0} → {during:0.0}", lost,
        ];
    }

    private static async Task<List<HttpStatusCode>> QueryManyAsync(ServerHandle server, int count, string sql)
    {
        var queries = Enumerable.Range(0, count).Select(async _ =>
        {
            using var response = await server.SqlAsync("healthy", sql);
            return response.StatusCode;
        });
        return [.. await Task.WhenAll(queries)];
    }

    private static async Task<List<HttpStatusCode>> CallManyAsync(ServerHandle server, int count, string database, string function, string json, string? token = null)
    {
        var calls = Enumerable.Range(0, count).Select(async _ =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/databases/{database}/call/{function}") { Content = new StringContent(json) };
            if (token is not null)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            }
            using var response = await server.Http.SendAsync(request);
            return response.StatusCode;
        });
        return [.. await Task.WhenAll(calls)];
    }

    private static async Task<List<HttpStatusCode>> PublishHostileAsync(ServerHandle server, string token)
    {
        byte[][] modules =
        [
            new HandmadeModule().Function("f", Struct(("a", Enumerable.Range(0, 100).Aggregate(I32, (type, _) => AlgebraicType.Array(type))))).ToWasm(),
            Wasm([0xff, 0xff, 0xff, 0x7f]),
            Wasm(Cycle()),
        ];
        var statuses = new List<HttpStatusCode>();
        foreach (var (wasm, i) in modules.Select((m, i) => (m, i)))
        {
            using var response = await server.PublishBytesAsync($"hostile-{i}", wasm, token: token);
            statuses.Add(response.StatusCode);
        }
        // Refused, and the document every tenant reads still builds.
        (await server.Http.GetAsync("/swagger/v1/swagger.json")).EnsureSuccessStatusCode();
        return statuses;
    }

    /// <summary>A description whose two types refer only to each other, and nothing else.</summary>
    private static byte[] Cycle() => [2, 0, 0, 0, (byte)TypeKind.Ref, 1, 0, 0, 0, (byte)TypeKind.Ref, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

    private static string Counts(IEnumerable<HttpStatusCode> statuses) =>
        string.Join(", ", statuses.GroupBy(s => (int)s).OrderBy(g => g.Key).Select(g => $"{g.Count()} × {g.Key}"));

    /// <summary>
    /// A caller with a token of its own on other databases: `example.add` (no transaction) and
    /// `healthy.increment` (a transaction), one after the other. Counts the increments that
    /// succeeded, so that the counter in Postgres must equal them: nothing committed is lost.
    /// </summary>
    private sealed class HealthyCalls(ServerHandle server, string token)
    {
        private static readonly (string Database, string Function, string Json)[] Calls = [("example", "add", "[2, 3]"), ("healthy", "increment", "[1]")];

        private readonly List<HttpStatusCode> _statuses = [];
        private long _committed;

        public async Task<double> MeasureAsync(TimeSpan duration)
        {
            using var timeout = new CancellationTokenSource(duration);
            return await MeasureWhileAsync(Task.Delay(Timeout.Infinite, timeout.Token).ContinueWith(_ => { }, TaskScheduler.Default));
        }

        /// <summary>The p99 latency in ms of healthy calls made until <paramref name="until"/> completes (at least one round).</summary>
        public async Task<double> MeasureWhileAsync(Task until)
        {
            var millis = new List<double>();
            do
            {
                foreach (var (database, function, json) in Calls)
                {
                    var stopwatch = Stopwatch.StartNew();
                    using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/databases/{database}/call/{function}") { Content = new StringContent(json) };
                    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                    using var response = await server.Http.SendAsync(request);
                    millis.Add(stopwatch.Elapsed.TotalMilliseconds);
                    _statuses.Add(response.StatusCode);
                    if (function == "increment" && response.StatusCode == HttpStatusCode.OK)
                    {
                        _committed++;
                    }
                }
            }
            while (!until.IsCompleted);
            millis.Sort();
            return Measure.Percentile(millis, 99);
        }

        public List<HttpStatusCode> TakeStatuses()
        {
            var taken = _statuses.ToList();
            _statuses.Clear();
            return taken;
        }

        /// <summary>"none" when the counter holds every increment that was answered 200.</summary>
        public async Task<string> LostAsync()
        {
            _statuses.Clear();
            var counter = long.Parse(await (await server.CallAsync("healthy", "counter_value", "")).Content.ReadAsStringAsync(), System.Globalization.CultureInfo.InvariantCulture);
            return counter == _committed ? "none" : $"counter {counter}, {_committed} increments committed";
        }

        public async Task<long> ScalarAsync(string sql)
        {
            using var response = await server.SqlAsync("healthy", sql, await server.OwnerTokenAsync());
            using var body = JsonDocument.Parse(await response.EnsureSuccessStatusCode().Content.ReadAsStringAsync());
            return body.RootElement.GetProperty("rows")[0][0].GetInt64();
        }
    }
}
