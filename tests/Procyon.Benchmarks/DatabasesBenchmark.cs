using System.Diagnostics;
using System.Text;
using Procyon.Testing;

namespace Procyon.Benchmarks;

/// <summary>
/// What many published databases cost a server: N databases of the example module (as many
/// tenants would publish it), then a server started on them from the compiled-module cache: its
/// start time, its resident memory, and <c>add</c> on one database (16 loops over HTTP). Beside
/// it, the same with one database. Each server runs in a process of its own.
/// </summary>
internal static class DatabasesBenchmark
{
    private const int Loops = 16;

    public static async Task<int> RunAsync(int databases, TimeSpan callsFor)
    {
        var one = await MeasureAsync(1, callsFor);
        var many = await MeasureAsync(databases, callsFor);
        Console.WriteLine($"{"databases",9} | {"publish s",9} | {"start ms",8} | {"RSS MiB after start",19} | {"RSS MiB after calls",19} | {"add p50 µs",10} | {"add p99 µs",10}");
        foreach (var figures in (Figures[])[one, many])
        {
            Console.WriteLine($"{figures.Databases,9} | {figures.PublishSeconds,9:0.0} | {figures.StartMillis,8:0} | {figures.StartRssMiB,19:0} | {figures.CalledRssMiB,19:0} | {figures.P50Micros,10:0} | {figures.P99Micros,10:0}");
        }
        var benchmark = $"databases, {databases:N0} published";
        Summary.Write(benchmark, "start ms", many.StartMillis, "1 database", one.StartMillis);
        Summary.Write(benchmark, "RSS MiB after start", many.StartRssMiB, "1 database", one.StartRssMiB);
        Summary.Write(benchmark, "add p50 µs", many.P50Micros, "1 database", one.P50Micros);
        Summary.Write(benchmark, "add p99 µs", many.P99Micros, "1 database", one.P99Micros);
        return 0;
    }

    private static async Task<Figures> MeasureAsync(int databases, TimeSpan callsFor)
    {
        await using var database = await TestDatabase.CreateAsync();
        var wasm = await File.ReadAllBytesAsync(Modules.PathOf("example"));
        var publishing = Stopwatch.StartNew();
        await using (var publisher = await ServerProcess.StartAsync(database, $"--Procyon:Runtime:MaxDatabasesPerIdentity={databases}"))
        {
            // Two at a time, as many as a server prepares at once by default.
            await Parallel.ForEachAsync(Enumerable.Range(0, databases), new ParallelOptions { MaxDegreeOfParallelism = 2 }, async (i, _) =>
                (await publisher.PublishBytesAsync($"db-{i}", wasm)).EnsureSuccessStatusCode());
        }
        var publishSeconds = publishing.Elapsed.TotalSeconds;

        var starting = Stopwatch.StartNew();
        await using var server = await ServerProcess.StartAsync(database);
        var startMillis = starting.Elapsed.TotalMilliseconds;
        var startRss = server.ResidentBytes;
        var micros = await CallAddAsync(server, callsFor);
        return new Figures(
            databases,
            publishSeconds,
            startMillis,
            startRss / (1024.0 * 1024),
            server.ResidentBytes / (1024.0 * 1024),
            Measure.Percentile(micros, 50),
            Measure.Percentile(micros, 99));
    }

    /// <summary>Microseconds per call of <c>add</c> on the first database, sorted.</summary>
    private static async Task<List<double>> CallAddAsync(ServerProcess server, TimeSpan callsFor)
    {
        var uri = new Uri(server.Address, "/v1/databases/db-0/call/add");
        var stopwatch = Stopwatch.StartNew();
        var loops = Enumerable.Range(0, Loops).Select(async _ =>
        {
            var micros = new List<double>();
            while (stopwatch.Elapsed < callsFor)
            {
                var started = Stopwatch.GetTimestamp();
                using var response = await server.Http.PostAsync(uri, new StringContent("[2,3]", Encoding.UTF8, "application/json"));
                response.EnsureSuccessStatusCode();
                micros.Add(Stopwatch.GetElapsedTime(started).TotalMicroseconds);
            }
            return micros;
        }).ToList();
        return (await Task.WhenAll(loops)).SelectMany(m => m).Order().ToList();
    }

    private sealed record Figures(int Databases, double PublishSeconds, double StartMillis, double StartRssMiB, double CalledRssMiB, double P50Micros, double P99Micros);
}
