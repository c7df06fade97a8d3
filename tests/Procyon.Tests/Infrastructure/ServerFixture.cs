using Procyon.Testing;

namespace Procyon.Tests.Infrastructure;

/// <summary>
/// One server per test class with the example module as <c>example</c>, the misbehaving test
/// module as <c>faulty</c> and the table test module as <c>ledger</c>. A short CPU deadline keeps the infinite-loop test quick.
/// </summary>
public sealed class ServerFixture : IAsyncLifetime
{
    private TestDatabase? _database;
    private TestServer? _server;

    public TestServer Server => _server ?? throw new InvalidOperationException("not started");

    public TestDatabase Database => _database ?? throw new InvalidOperationException("not started");

    public async Task InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync();
        _server = await TestServer.StartAsync(_database, "--Procyon:Runtime:CallTimeout=00:00:00.500", "--Procyon:Runtime:MaxMemoryBytes=33554432");
        foreach (var module in (string[])["example", "faulty", "ledger"])
        {
            (await _server.PublishAsync(module, module)).EnsureSuccessStatusCode();
        }
    }

    public async Task DisposeAsync()
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
