using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Procyon.Testing;

namespace Procyon.Benchmarks;

/// <summary>
/// Publishing the example module as a new version (distinct bytes each time, so nothing is reused)
/// on a server that answers after the quick Asyncify rewrite and optimizes in the background, beside
/// one that waits for the optimized rewrite (as every publish did before). Then what the quick
/// rewrite costs at run time: a CPU-bound procedure (<c>faulty.crunches</c>) on a server whose
/// background optimization fails, so it keeps the quick rewrite, beside the optimized one.
/// </summary>
internal static class PublishBenchmark
{
    private const string Crunch = "[20000]";

    public static async Task<int> RunAsync(int publishes, int calls)
    {
        await using var quickDatabase = await TestDatabase.CreateAsync();
        await using var waitingDatabase = await TestDatabase.CreateAsync();
        await using var quick = await TestServer.StartAsync(quickDatabase, "--Procyon:Runtime:OptimizeAfterPublish=true");
        await using var waiting = await TestServer.StartAsync(waitingDatabase);
        var example = await File.ReadAllBytesAsync(Modules.PathOf("example"));
        // Alternating, so that a slow spell of the machine hits both alike; each quick publish is
        // optimized before the next publish starts.
        List<double> quickMillis = [], optimizedMillis = [], waitingMillis = [];
        for (var i = 0; i < publishes; i++)
        {
            var started = Stopwatch.GetTimestamp();
            await PublishAsync(quick, Modules.WithCustomSection(example, $"quick {i}"));
            quickMillis.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            await WaitUntilOptimizedAsync(quick);
            optimizedMillis.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            started = Stopwatch.GetTimestamp();
            await PublishAsync(waiting, Modules.WithCustomSection(example, $"waiting {i}"));
            waitingMillis.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
        var (quickRun, optimizedRun) = await CrunchAsync(calls);

        Console.WriteLine($"{"publish",-44} | {"p50 ms",7} | {"min ms",7} | {"max ms",7}");
        Print("answered, quick rewrite", quickMillis);
        Print("optimized in the background, from the PUT", optimizedMillis);
        Print("answered, waiting for the optimized rewrite", waitingMillis);
        Console.WriteLine();
        Console.WriteLine($"{"crunches(20000)",-44} | {"p50 µs",7} | {"min µs",7} | {"max µs",7}");
        Print("quick rewrite", quickRun);
        Print("optimized rewrite", optimizedRun);
        Console.WriteLine($"publish answered in {Median(quickMillis) / Median(waitingMillis):0.00}× the time; the quick rewrite runs crunches in {Median(quickRun) / Median(optimizedRun):0.00}× the time");
        Summary.Write("publish, example module", "p50 ms to answer", Median(quickMillis), "waiting for -O2", Median(waitingMillis));
        Summary.Write("publish, example module", "p50 ms until optimized", Median(optimizedMillis), "waiting for -O2", Median(waitingMillis));
        Summary.Write("crunches(20000), CPU-bound", "p50 µs, quick rewrite", Median(quickRun), "optimized rewrite", Median(optimizedRun));
        return 0;
    }

    /// <summary>The same calls, alternating, on a server stuck with the quick rewrite and one with the optimized.</summary>
    private static async Task<(List<double> Quick, List<double> Optimized)> CrunchAsync(int calls)
    {
        var scripts = Directory.CreateTempSubdirectory("procyon-bench-");
        // The background optimization fails and the quick rewrite stays.
        var script = await WasmOptScript.WriteAsync(scripts.FullName, WasmOptScript.RefusingToOptimize);
        try
        {
            await using var quickDatabase = await TestDatabase.CreateAsync();
            await using var optimizedDatabase = await TestDatabase.CreateAsync();
            await using var quick = await TestServer.StartAsync(quickDatabase, "--Procyon:Runtime:OptimizeAfterPublish=true", $"--Procyon:Runtime:WasmOptPath={script}");
            await using var optimized = await TestServer.StartAsync(optimizedDatabase);
            (await quick.PublishAsync("faulty", "faulty")).EnsureSuccessStatusCode();
            (await optimized.PublishAsync("faulty", "faulty")).EnsureSuccessStatusCode();
            List<double> quickMicros = [], optimizedMicros = [];
            for (var warm = 0; warm < 20; warm++)
            {
                await TimeCallAsync(quick);
                await TimeCallAsync(optimized);
            }
            for (var i = 0; i < calls; i++)
            {
                quickMicros.Add(await TimeCallAsync(quick));
                optimizedMicros.Add(await TimeCallAsync(optimized));
            }
            return (quickMicros, optimizedMicros);
        }
        finally
        {
            scripts.Delete(recursive: true);
        }
    }

    private static async Task<double> TimeCallAsync(ServerHandle server)
    {
        var started = Stopwatch.GetTimestamp();
        using var response = await server.CallAsync("faulty", "crunches", Crunch);
        response.EnsureSuccessStatusCode();
        await response.Content.ReadAsByteArrayAsync();
        return Stopwatch.GetElapsedTime(started).TotalMicroseconds;
    }

    private static async Task PublishAsync(ServerHandle server, byte[] wasm)
    {
        using var response = await server.PublishBytesAsync("example", wasm);
        response.EnsureSuccessStatusCode();
    }

    private static async Task WaitUntilOptimizedAsync(ServerHandle server)
    {
        var deadline = Stopwatch.StartNew();
        while (!(await server.Http.GetFromJsonAsync<JsonElement>("/v1/databases/example/schema")).GetProperty("optimized").GetBoolean())
        {
            if (deadline.Elapsed > TimeSpan.FromMinutes(2))
            {
                throw new TimeoutException("the module was not optimized within two minutes");
            }
            await Task.Delay(5);
        }
    }

    private static void Print(string what, List<double> figures) =>
        Console.WriteLine($"{what,-44} | {Median(figures),7:0} | {figures.Min(),7:0} | {figures.Max(),7:0}");

    private static double Median(List<double> figures) => Measure.Percentile(figures.Order().ToList(), 50);
}
