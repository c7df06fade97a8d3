using System.Diagnostics;
using System.Text;
using Procyon.Testing;

namespace Procyon.Benchmarks;

/// <summary>
/// `add(2, 3)` over HTTP through Procyon (endpoint → JSON → BSATN → wasm → JSON) beside a bare
/// minimal-API endpoint that parses the same body and adds, with the same client and concurrency.
/// </summary>
internal static class HttpAddBenchmark
{
    public static async Task<int> RunAsync(int concurrency, TimeSpan duration)
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await TestServer.StartAsync(database);
        (await server.PublishAsync("example", "example")).EnsureSuccessStatusCode();
        await using var bare = await BareServer.StartAsync();
        using var client = new HttpClient();
        var procyon = new Uri(server.Address, "/v1/databases/example/call/add");
        var baseline = new Uri(bare.Urls.First() + "/add");

        var warmUp = await Measure.WarmUntilJitSettlesAsync(async () =>
        {
            await LoadAsync(client, procyon, concurrency, duration / 8);
            await LoadAsync(client, baseline, concurrency, duration / 8);
        });
        // In alternating halves, so that neither server's window alone holds a slow spell of the
        // machine.
        var ourHalves = new List<(List<double> Micros, TimeSpan Elapsed)>();
        var theirHalves = new List<(List<double> Micros, TimeSpan Elapsed)>();
        for (var half = 0; half < 2; half++)
        {
            ourHalves.Add(await LoadAsync(client, procyon, concurrency, duration / 2));
            theirHalves.Add(await LoadAsync(client, baseline, concurrency, duration / 2));
        }
        var ours = Figures(ourHalves);
        var theirs = Figures(theirHalves);

        Console.WriteLine($"{"server",-8} | {"concurrency",11} | {"requests/s",10} | {"p50 µs",7} | {"p99 µs",7}");
        Console.WriteLine($"{"procyon",-8} | {concurrency,11} | {ours.Rate,10:0} | {ours.P50,7:0} | {ours.P99,7:0}");
        Console.WriteLine($"{"bare",-8} | {concurrency,11} | {theirs.Rate,10:0} | {theirs.P50,7:0} | {theirs.P99,7:0}");
        Console.WriteLine($"(after {warmUp} warm-up rounds of {(duration / 4).TotalSeconds:0.##} s each)");
        Console.WriteLine($"Procyon / bare requests/s: {ours.Rate / theirs.Rate:0.00}×; p50 added latency per call: {ours.P50 - theirs.P50:0} µs");
        Summary.Write($"http-add, {concurrency} loops", "requests/s", ours.Rate, "minimal API", theirs.Rate);
        Summary.Write($"http-add, {concurrency} loops", "p50 µs", ours.P50, "minimal API", theirs.P50);
        return 0;
    }

    private static (double Rate, double P50, double P99) Figures(List<(List<double> Micros, TimeSpan Elapsed)> halves)
    {
        var all = halves.SelectMany(h => h.Micros).Order().ToList();
        return (all.Count / halves.Sum(h => h.Elapsed.TotalSeconds), Measure.Percentile(all, 50), Measure.Percentile(all, 99));
    }

    private static async Task<(List<double> Micros, TimeSpan Elapsed)> LoadAsync(HttpClient client, Uri uri, int concurrency, TimeSpan duration)
    {
        var stopwatch = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, concurrency).Select(async _ =>
        {
            var micros = new List<double>();
            while (stopwatch.Elapsed < duration)
            {
                var started = Stopwatch.GetTimestamp();
                using var response = await client.PostAsync(uri, new StringContent("[2,3]", Encoding.UTF8, "application/json"));
                response.EnsureSuccessStatusCode();
                await response.Content.ReadAsByteArrayAsync();
                micros.Add(Stopwatch.GetElapsedTime(started).TotalMicroseconds);
            }
            return micros;
        }).ToList();
        var micros = (await Task.WhenAll(workers)).SelectMany(m => m).ToList();
        return (micros, stopwatch.Elapsed);
    }
}
