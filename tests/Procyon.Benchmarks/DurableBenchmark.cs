using System.Diagnostics;
using System.Text.Json;
using Procyon.Testing;

namespace Procyon.Benchmarks;

/// <summary>
/// Durable sleeps: (1) the snapshot a sleeping call writes, for the ledger module with 16 KiB and
/// 10 MiB of heap, and the time to take it; (2) N concurrent sleepers written to Postgres beside
/// the same N sleeping in memory only (a server whose <c>DurableSleepAfter</c> is a day): how late
/// they wake, how fast the snapshots are written, the server's resident memory; (3) N durable
/// sleepers on a server that is then SIGKILLed, woken by a second server: how late they end beside
/// their wake time. The sleeps last 2 s, or 2 ms per sleeper when that is longer, so that every
/// snapshot is written before the first wakes. Each server is a process of its own.
/// </summary>
internal static class DurableBenchmark
{
    /// <summary>The killed server's sleepers sleep this much longer, for the second server to start.</summary>
    private const int KilledExtraMillis = 3000;

    private static readonly string[] Limits =
    [
        "--Procyon:Runtime:MaxConcurrentCalls=20000", "--Procyon:Runtime:MaxCallsPerIdentity=20000", "--Procyon:Runtime:MaxCallsPerDatabase=20000",
        "--Procyon:Runtime:MaxIdleInstances=20000", $"--Procyon:Runtime:MaxTotalMemoryBytes={64L << 30}", $"--Procyon:Runtime:MaxIdleMemoryBytes={64L << 30}",
    ];

    /// <summary>For the killed server's calls: a short lease, so that they are taken over before they wake.</summary>
    private static readonly string[] ShortLease = [.. Limits, "--Procyon:Runtime:DurableLease=00:00:02"];

    public static async Task<int> RunAsync(int sleepers)
    {
        var napMillis = Math.Max(2000, 2 * sleepers);
        await SnapshotSizesAsync();
        Console.WriteLine();
        var durable = await SleepersAsync(sleepers, napMillis, durable: true);
        var inMemory = await SleepersAsync(sleepers, napMillis, durable: false);
        Console.WriteLine($"{$"sleepers of {napMillis / 1000.0:0.#} s",-18} | {"count",6} | {"p50 late ms",11} | {"p99 late ms",11} | {"snapshots/s",11} | {"RSS MiB",7}");
        Print("durable", sleepers, durable);
        Print("in memory", sleepers, inMemory);
        Console.WriteLine();
        var killedMillis = napMillis + KilledExtraMillis;
        var (resumedP50, resumedP99, resumedMax) = await KilledAsync(sleepers, killedMillis);
        Console.WriteLine($"{sleepers} durable sleepers of {killedMillis / 1000.0:0.#} s on a SIGKILLed server, woken by another: end after wake time p50 / p99 / max {resumedP50:0} / {resumedP99:0} / {resumedMax:0} ms");
        Summary.Write($"durable sleepers, {sleepers:N0} for {napMillis / 1000.0:0.#} s", "p99 ms late", durable.P99, "in memory", inMemory.P99);
        Summary.Write($"durable sleepers, {sleepers:N0} for {napMillis / 1000.0:0.#} s", "p50 ms late", durable.P50, "in memory", inMemory.P50);
        Summary.Write($"durable sleepers, {sleepers:N0} on a killed server", "p99 ms late, woken elsewhere", resumedP99, "in memory, alive", inMemory.P99);
        return 0;
    }

    private static void Print(string label, int count, (double P50, double P99, double Rate, double RssMiB) figures) =>
        Console.WriteLine($"{label,-18} | {count,6} | {figures.P50,11:0.0} | {figures.P99,11:0.0} | {figures.Rate,11:0} | {figures.RssMiB,7:0}");

    /// <summary>The bytes of one sleeping call's snapshot with little and with much heap.</summary>
    private static async Task SnapshotSizesAsync()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await ServerProcess.StartAsync(database, Limits);
        (await server.PublishAsync("ledger", "ledger")).EnsureSuccessStatusCode();
        Console.WriteLine($"{"heap of the sleeping call",-26} | {"snapshot KiB",12}");
        foreach (var kib in (int[])[16, 10240])
        {
            // A fresh instance each time: an instance reused after a bigger call would carry its freed heap.
            var call = server.CallAsync("ledger", "visits_twice", $"[1500, {kib}]");
            await WaitForAsync(database, "SELECT count(*) FROM procyon.sleeping_calls", n => n == 1);
            var bytes = await database.ScalarAsync<int>("SELECT length(snapshot) FROM procyon.sleeping_calls");
            (await call).EnsureSuccessStatusCode();
            Console.WriteLine($"{kib + " KiB",-26} | {bytes / 1024.0,12:0.0}");
            Summary.Write($"durable snapshot, {kib:N0} KiB heap", "KiB", bytes / 1024.0, "heap", kib);
        }
    }

    private static async Task<(double P50, double P99, double Rate, double RssMiB)> SleepersAsync(int count, int napMillis, bool durable)
    {
        await using var database = await TestDatabase.CreateAsync();
        string[] settings = durable ? Limits : [.. Limits, "--Procyon:Runtime:DurableSleepAfter=1.00:00:00"];
        await using var server = await ServerProcess.StartAsync(database, settings);
        (await server.PublishAsync("faulty", "faulty")).EnsureSuccessStatusCode();
        using var client = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromMinutes(5) };
        // Warm-up: the JIT, the instance pool, the connection pool.
        await Task.WhenAll(Enumerable.Range(0, count).Select(_ => NapAsync(client, 10)));
        var started = Stopwatch.StartNew();
        var naps = Enumerable.Range(0, count).Select(_ => NapAsync(client, napMillis)).ToList();
        var rate = 0.0;
        if (durable)
        {
            await WaitForAsync(database, "SELECT count(*) FROM procyon.sleeping_calls", n => n >= count, naps);
            rate = count / started.Elapsed.TotalSeconds;
        }
        var rss = server.ResidentBytes / (1024.0 * 1024);
        var late = (await Task.WhenAll(naps)).Select(micros => (micros - napMillis * 1000.0) / 1000).Order().ToList();
        return (Measure.Percentile(late, 50), Measure.Percentile(late, 99), rate, rss);
    }

    /// <summary>Sleepers on a server SIGKILLed once all are written; how long after its wake time each ended on the second.</summary>
    private static async Task<(double P50, double P99, double Max)> KilledAsync(int count, int napMillis)
    {
        await using var database = await TestDatabase.CreateAsync();
        await using (var first = await ServerProcess.StartAsync(database, ShortLease))
        {
            (await first.PublishAsync("faulty", "faulty")).EnsureSuccessStatusCode();
            using var client = new HttpClient { BaseAddress = first.Address, Timeout = TimeSpan.FromMinutes(5) };
            var naps = Enumerable.Range(0, count).Select(_ => NapAsync(client, napMillis)).ToList();
            await WaitForAsync(database, "SELECT count(*) FROM procyon.sleeping_calls", n => n >= count, naps);
            await first.KillAsync();
            await Task.WhenAll(naps.Select(nap => nap.ContinueWith(_ => { }, TaskScheduler.Default)));
        }
        await using var second = await ServerProcess.StartAsync(database, ShortLease);
        await WaitForAsync(database, "SELECT count(*) FROM procyon.calls WHERE status <> 'running'", n => n >= count);
        // Each call's value is the microseconds its one nap took: from its sleep to its end on the second server.
        var late = (await database.QueryAsync("SELECT value FROM procyon.calls"))
            .Select(value => (JsonDocument.Parse(value).RootElement[0].GetInt64() - napMillis * 1000.0) / 1000)
            .Order()
            .ToList();
        return (Measure.Percentile(late, 50), Measure.Percentile(late, 99), late[^1]);
    }

    /// <summary>One nap of <paramref name="millis"/>; returns the microseconds it took, as the module measured them.</summary>
    private static async Task<long> NapAsync(HttpClient client, int millis)
    {
        using var response = await client.PostAsync("/v1/databases/faulty/call/naps", new StringContent($"[1, {millis}]"));
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"a nap failed: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return body.RootElement[0].GetInt64();
    }

    /// <param name="calls">Calls under way: one that failed ends the wait with its failure.</param>
    private static async Task WaitForAsync(TestDatabase database, string countSql, Func<long, bool> done, IReadOnlyList<Task>? calls = null)
    {
        var waited = Stopwatch.StartNew();
        long last;
        while (!done(last = await database.ScalarAsync<long>(countSql)))
        {
            if (calls?.FirstOrDefault(call => call.IsFaulted) is { } failed)
            {
                await failed;
            }
            if (waited.Elapsed > TimeSpan.FromMinutes(5))
            {
                throw new TimeoutException($"'{countSql}' did not get there within 5 minutes: it stayed at {last}");
            }
            await Task.Delay(20);
        }
    }
}
