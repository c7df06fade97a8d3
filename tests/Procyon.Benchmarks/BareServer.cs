using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Procyon.Benchmarks;

/// <summary>The baseline: minimal-API endpoints doing what the module does, with no module behind them.</summary>
internal static class BareServer
{
    /// <param name="map">Maps further endpoints, for a benchmark of its own.</param>
    public static async Task<WebApplication> StartAsync(Action<WebApplication>? map = null, params string[] args)
    {
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var app = builder.Build();
        app.MapPost("/nap", async () =>
        {
            var started = Stopwatch.GetTimestamp();
            await Task.Delay(SleepersBenchmark.NapMillis);
            return Results.Json(new[] { (long)Stopwatch.GetElapsedTime(started).TotalMicroseconds });
        });
        // Reads the same JSON array body as Procyon's add and returns the sum.
        app.MapPost("/add", async (HttpRequest request) =>
        {
            var numbers = await request.ReadFromJsonAsync<int[]>();
            return Results.Json(numbers![0] + numbers[1]);
        });
        map?.Invoke(app);
        await app.StartAsync();
        return app;
    }
}
