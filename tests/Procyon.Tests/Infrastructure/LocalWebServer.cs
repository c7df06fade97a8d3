using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Procyon.Tests.Infrastructure;

/// <summary>
/// A real web server on 127.0.0.1 for modules' outbound requests to reach: it answers, echoes,
/// stalls, floods and redirects, and counts the requests it has in flight.
/// </summary>
public sealed class LocalWebServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _inFlight;
    private int _mostInFlight;
    private int _requests;
    private int _abandoned;

    private LocalWebServer(WebApplication app) => _app = app;

    /// <summary>Its base address, <c>http://127.0.0.1:port</c>.</summary>
    public string Url => _app.Urls.First();

    public int Port => new Uri(Url).Port;

    /// <summary>The most requests it had in flight at once.</summary>
    public int MostInFlight => Volatile.Read(ref _mostInFlight);

    /// <summary>The requests it received.</summary>
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>The requests to <c>/slow</c> whose client went away before the answer.</summary>
    public int Abandoned => Volatile.Read(ref _abandoned);

    public static async Task<LocalWebServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var server = new LocalWebServer(app);
        app.Use(server.CountAsync);
        app.MapGet("/hello", (HttpResponse response) =>
        {
            response.Headers["X-Reply"] = "yes";
            return "hello";
        });
        app.MapPost("/echo", async (HttpRequest request, HttpResponse response) =>
        {
            response.StatusCode = StatusCodes.Status201Created;
            response.Headers["X-Seen-Method"] = request.Method;
            response.Headers["X-Seen-Custom"] = request.Headers["X-Custom"];
            response.Headers["X-Seen-Content-Type"] = request.ContentType;
            response.ContentType = "application/octet-stream";
            await request.Body.CopyToAsync(response.Body);
        });
        app.MapGet("/slow", async (int ms, CancellationToken cancellationToken) =>
        {
            try
            {
                await Task.Delay(ms, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                Interlocked.Increment(ref server._abandoned);
                throw;
            }
            return "slow";
        });
        app.MapGet("/large", async (int bytes, bool chunked, HttpResponse response) =>
        {
            if (!chunked)
            {
                response.ContentLength = bytes;
            }
            var chunk = new byte[4096];
            for (var sent = 0; sent < bytes; sent += chunk.Length)
            {
                await response.Body.WriteAsync(chunk.AsMemory(0, Math.Min(chunk.Length, bytes - sent)));
            }
        });
        app.MapGet("/redirect", (string to) => Results.Redirect(to));
        await app.StartAsync();
        return server;
    }

    private async Task CountAsync(HttpContext context, RequestDelegate next)
    {
        Interlocked.Increment(ref _requests);
        var now = Interlocked.Increment(ref _inFlight);
        for (var most = MostInFlight; now > most && Interlocked.CompareExchange(ref _mostInFlight, now, most) != most; most = MostInFlight)
        {
        }
        try
        {
            await next(context);
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
