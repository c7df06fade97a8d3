using System.Diagnostics;
using System.Net;
using Procyon.Testing;
using static Procyon.Tests.Problems;

namespace Procyon.Tests;

/// <summary>Postgres going away under a running server: calls fail fast, and the server heals by itself.</summary>
public sealed class FaultTests
{
    [Fact]
    public async Task While_Postgres_is_away_calls_fail_fast_with_503_and_afterwards_the_server_catches_up_without_a_restart()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var proxy = PostgresProxy.Start(database);
        await using var server = await TestServer.StartAsync(database, $"--ConnectionStrings:Postgres={proxy.ConnectionStringFor(database)}");
        await using var replica = await TestServer.StartAsync(database);
        (await server.PublishAsync("ledger", "ledger")).EnsureSuccessStatusCode();

        proxy.Cut();
        var stopwatch = Stopwatch.StartNew();
        var refused = await server.CallAsync("ledger", "increment", "[1]");

        var problem = await AssertProblemAsync(refused, HttpStatusCode.ServiceUnavailable);
        Assert.Contains("the database is unavailable", problem.Detail());
        Assert.Equal("1", refused.Headers.RetryAfter?.ToString());
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(3), $"took {stopwatch.Elapsed}");
        Assert.Equal(HttpStatusCode.OK, (await server.CallAsync("ledger", "ping", "")).StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await server.Http.GetAsync("/healthz")).StatusCode);
        // Published on another replica while this one cannot hear of it.
        Assert.Equal(HttpStatusCode.Created, (await replica.PublishAsync("fresh", "example")).StatusCode);

        proxy.Restore();

        await ScheduledTablesTests.EventuallyAsync(async () =>
            (await server.CallAsync("ledger", "increment", "[1]")).StatusCode == HttpStatusCode.OK
            && (await server.Http.GetAsync("/v1/databases/fresh/schema")).StatusCode == HttpStatusCode.OK);
        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("/healthz")).StatusCode);
        Assert.Equal("5", await (await server.CallAsync("fresh", "add", "[2, 3]")).Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_replica_that_missed_a_delete_and_a_new_claim_of_the_same_bytes_learns_the_new_owner()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var proxy = PostgresProxy.Start(database);
        await using var replica = await TestServer.StartAsync(database, $"--ConnectionStrings:Postgres={proxy.ConnectionStringFor(database)}");
        await using var server = await TestServer.StartAsync(database);
        var (_, first) = await server.NewIdentityAsync();
        var (_, second) = await server.NewIdentityAsync();
        Assert.Equal(HttpStatusCode.Created, (await server.PublishAsync("handed", "ledger", first)).StatusCode);
        await ScheduledTablesTests.EventuallyAsync(async () => (await replica.Http.GetAsync("/v1/databases/handed/schema")).IsSuccessStatusCode);

        proxy.Cut();
        Assert.Equal(HttpStatusCode.NoContent, (await server.DeleteAsync("handed", first)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await server.PublishAsync("handed", "ledger", second)).StatusCode);
        proxy.Restore();

        await ScheduledTablesTests.EventuallyAsync(async () => (await LogsAsync(replica, second)).StatusCode == HttpStatusCode.OK);
        Assert.Equal(HttpStatusCode.Forbidden, (await LogsAsync(replica, first)).StatusCode);
    }

    private static async Task<HttpResponseMessage> LogsAsync(ServerHandle server, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/databases/handed/logs");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        return await server.Http.SendAsync(request);
    }
}
