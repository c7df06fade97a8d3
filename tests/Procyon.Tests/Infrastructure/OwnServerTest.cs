using Procyon.Testing;

namespace Procyon.Tests.Infrastructure;

/// <summary>A test class with a server and Postgres database of its own, started with <paramref name="settings"/>.</summary>
public abstract class OwnServerTest(params string[] settings) : IAsyncLifetime
{
    private TestDatabase? _database;
    private TestServer? _server;

    protected TestServer Server => _server ?? throw new InvalidOperationException("not started");

    protected TestDatabase Database => _database ?? throw new InvalidOperationException("not started");

    /// <summary>The databases (and the test module each runs) published once the server is up.</summary>
    protected virtual IEnumerable<(string Database, string Module)> Published => [];

    public virtual async Task InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync();
        _server = await TestServer.StartAsync(_database, settings);
        foreach (var (database, module) in Published)
        {
            (await _server.PublishAsync(database, module)).EnsureSuccessStatusCode();
        }
    }

    public virtual async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
    }
}
