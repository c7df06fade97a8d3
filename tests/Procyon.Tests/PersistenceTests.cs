using System.Net;
using Procyon.Testing;

namespace Procyon.Tests;

public sealed class PersistenceTests
{
    [Fact]
    public async Task Published_modules_are_served_again_after_a_restart_without_republishing()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using (var first = await TestServer.StartAsync(database))
        {
            Assert.Equal(HttpStatusCode.Created, (await first.PublishAsync("example", "example")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await first.PublishAsync("example", "example")).StatusCode);
        }

        await using var second = await TestServer.StartAsync(database);
        var response = await second.CallAsync("example", "add", "[20,22]");

        Assert.Equal("42", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Deleted_databases_stay_deleted_after_a_restart()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using (var first = await TestServer.StartAsync(database))
        {
            await first.PublishAsync("example", "example");
            Assert.Equal(HttpStatusCode.NoContent, (await first.DeleteAsync("example")).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await first.CallAsync("example", "add", "[1,2]")).StatusCode);
        }

        await using var second = await TestServer.StartAsync(database);

        Assert.Equal(HttpStatusCode.NotFound, (await second.CallAsync("example", "add", "[1,2]")).StatusCode);
    }
}
