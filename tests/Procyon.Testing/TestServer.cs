using Microsoft.AspNetCore.Builder;
using Procyon.Server;

namespace Procyon.Testing;

/// <summary>The real server on Kestrel, on a free loopback port, against a test database.</summary>
public sealed class TestServer : ServerHandle
{
    private readonly WebApplication _app;

    private TestServer(WebApplication app, Uri address)
        : base(address) => _app = app;

    /// <summary>The server's services, for tests that check what it holds (the tables it loaded, say).</summary>
    public IServiceProvider Services => _app.Services;

    public static async Task<TestServer> StartAsync(TestDatabase database, params string[] settings)
    {
        string[] args =
        [
            "--urls=http://127.0.0.1:0",
            $"--ConnectionStrings:Postgres={database.ConnectionString}",
            "--Logging:LogLevel:Default=Warning",
            $"--Procyon:Runtime:CompiledCacheKey={CompiledCacheKey}",
            // A module swapped under a test while it measures instances would make it flaky: tests of the background optimization turn it on.
            "--Procyon:Runtime:OptimizeAfterPublish=false",
            .. settings,
        ];
        var app = Program.Build(args);
        await app.StartAsync();
        return new TestServer(app, new Uri(app.Urls.First()));
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
