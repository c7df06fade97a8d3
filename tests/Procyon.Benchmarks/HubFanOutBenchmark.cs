using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Procyon.Testing;

namespace Procyon.Benchmarks;

/// <summary>
/// N hub connections subscribed to one database, M calls of <c>add</c>: how long after each
/// call completed (its <c>startedAt + durationMicros</c>) every subscriber has its <c>Result</c>.
/// Beside it, a bare SignalR hub broadcasting a same-sized message from an HTTP endpoint to N
/// connections. Each server runs in a process of its own and the clients in this one, so what
/// is compared is what each server costs, not the clients' share of the same threads.
/// </summary>
internal static class HubFanOutBenchmark
{
    public static async Task<int> RunAsync(int connections, int calls)
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await ServerProcess.StartAsync(database);
        (await server.PublishAsync("example", "example")).EnsureSuccessStatusCode();
        using var bare = await BareHubProcess.StartAsync();
        using var client = new HttpClient();

        var procyon = await MeasureAsync(
            connections,
            calls,
            () => new HubConnectionBuilder().WithUrl(new Uri(server.Address, "/hubs/procyon")).Build(),
            hub => hub.InvokeAsync("Subscribe", "example", null),
            "Result",
            result => result.GetProperty("startedAt").GetDateTimeOffset().AddTicks(result.GetProperty("durationMicros").GetInt64() * 10),
            i => client.PostAsync(new Uri(server.Address, "/v1/databases/example/call/add"), new StringContent($"[{i}, 1]", Encoding.UTF8, "application/json")));
        var baseline = await MeasureAsync(
            connections,
            calls,
            () => new HubConnectionBuilder().WithUrl(bare.Url + "/hub").Build(),
            _ => Task.CompletedTask,
            "Result",
            result => result.GetProperty("completedAt").GetDateTimeOffset(),
            i => client.PostAsync(bare.Url + $"/broadcast/{i}", null));

        Console.WriteLine($"{"hub",-12} | {"connections",11} | {"calls",5} | {"deliveries",10} | {"p50 ms",7} | {"p99 ms",7} | {"max ms",7}");
        Print("procyon", connections, calls, procyon);
        Print("bare SignalR", connections, calls, baseline);
        foreach (var p in (int[])[50, 99])
        {
            Summary.Write($"hub, {connections} connections", $"p{p} ms delivery", Measure.Percentile(procyon, p), "bare SignalR", Measure.Percentile(baseline, p));
        }
        return 0;
    }

    private static void Print(string label, int connections, int calls, List<double> latencies) =>
        Console.WriteLine($"{label,-12} | {connections,11} | {calls,5} | {latencies.Count,10} | {Measure.Percentile(latencies, 50),7:0.0} | {Measure.Percentile(latencies, 99),7:0.0} | {latencies.LastOrDefault(),7:0.0}");

    private static async Task<List<double>> MeasureAsync(
        int connections,
        int calls,
        Func<HubConnection> connect,
        Func<HubConnection, Task> subscribe,
        string method,
        Func<JsonElement, DateTimeOffset> completedAt,
        Func<int, Task<HttpResponseMessage>> call)
    {
        var latencies = new ConcurrentBag<double>();
        var hubs = new List<HubConnection>();
        foreach (var chunk in Enumerable.Range(0, connections).Chunk(50))
        {
            hubs.AddRange(await Task.WhenAll(chunk.Select(async _ =>
            {
                var hub = connect();
                hub.On<JsonElement>(method, result => latencies.Add((DateTimeOffset.UtcNow - completedAt(result)).TotalMilliseconds));
                await hub.StartAsync();
                await subscribe(hub);
                return hub;
            })));
        }
        for (var i = 0; i < calls; i++)
        {
            (await call(i)).EnsureSuccessStatusCode();
            await Task.Delay(20);
        }
        var expected = connections * calls;
        var waited = Stopwatch.StartNew();
        while (latencies.Count < expected && waited.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(50);
        }
        await Task.WhenAll(hubs.Select(h => h.DisposeAsync().AsTask()));
        return latencies.Order().ToList();
    }

    /// <summary>
    /// The bare hub's process (this program with <c>bare-hub</c>): it prints its address and serves
    /// until its standard input closes, so it ends with the benchmark however that ends.
    /// </summary>
    public static async Task<int> ServeBareHubAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddSignalR();
        await using var app = builder.Build();
        app.MapHub<BroadcastHub>("/hub");
        app.MapPost("/broadcast/{i:int}", async (int i, IHubContext<BroadcastHub> hub) =>
        {
            await hub.Clients.All.SendAsync("Result", new { db = "example", fn = "add", value = i + 1, completedAt = DateTimeOffset.UtcNow });
            return Results.Ok();
        });
        await app.StartAsync();
        Console.WriteLine(app.Urls.First());
        await Console.In.ReadToEndAsync();
        await app.StopAsync();
        return 0;
    }

    private sealed class BroadcastHub : Hub;

    private sealed class BareHubProcess(Process process, string url) : IDisposable
    {
        public string Url { get; } = url;

        public static async Task<BareHubProcess> StartAsync()
        {
            var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
            };
            start.ArgumentList.Add(typeof(HubFanOutBenchmark).Assembly.Location);
            start.ArgumentList.Add("bare-hub");
            var process = Process.Start(start) ?? throw new InvalidOperationException("the bare hub's process did not start");
            var url = await process.StandardOutput.ReadLineAsync() ?? throw new InvalidOperationException("the bare hub's process ended before it served");
            return new BareHubProcess(process, url);
        }

        public void Dispose()
        {
            process.StandardInput.Close();
            if (!process.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                process.Kill();
            }
            process.Dispose();
        }
    }
}
