using System.Net;
using System.Net.Http.Headers;
using System.Net.ServerSentEvents;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using Procyon.Tests.Infrastructure;

namespace Procyon.Tests;

/// <summary><c>GET /logs?follow=true</c> (Server-Sent Events) and the hub's <c>Logs</c> stream: a database's log lines, bounded per database.</summary>
public sealed class LogFollowTests() : OwnServerTest("--Procyon:Runtime:LogFollowersPerDatabase=1")
{
    [Fact]
    public async Task A_follower_gets_the_recent_lines_then_new_ones_and_its_stream_ends_when_the_database_is_deleted()
    {
        (await Server.PublishAsync("loud", "faulty")).EnsureSuccessStatusCode();
        await Server.CallAsync("loud", "shouts", "[2, 3]");

        using var follow = await FollowAsync("loud");
        Assert.Equal(HttpStatusCode.OK, follow.StatusCode);
        Assert.Equal("text/event-stream", follow.Content.Headers.ContentType?.MediaType);
        await using var events = SseParser.Create(await follow.Content.ReadAsStreamAsync()).EnumerateAsync().GetAsyncEnumerator();
        Assert.Equal(["xxx", "xxx"], [await NextMessageAsync(events), await NextMessageAsync(events)]);

        // One follower per database here: a second is refused until the first goes.
        using (var second = await FollowAsync("loud"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, second.StatusCode);
            Assert.Contains("LogFollowersPerDatabase", await second.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        await Server.CallAsync("loud", "shouts", "[1, 4]");
        Assert.Equal("xxxx", await NextMessageAsync(events));

        using (var delete = new HttpRequestMessage(HttpMethod.Delete, "/v1/databases/loud"))
        {
            delete.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await Server.OwnerTokenAsync());
            Assert.Equal(HttpStatusCode.NoContent, (await Server.Http.SendAsync(delete)).StatusCode);
        }
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Assert.False(await events.MoveNextAsync().AsTask().WaitAsync(timeout.Token), "the stream went on after the database was deleted");
    }

    [Fact]
    public async Task A_level_keeps_that_level_and_the_more_severe_ones_and_a_bad_one_is_refused()
    {
        (await Server.PublishAsync("levels", "faulty")).EnsureSuccessStatusCode();
        await Server.CallAsync("levels", "shouts", "[1, 2]");
        await Server.CallAsync("levels", "panics", """["boom"]""");

        var all = JsonDocument.Parse(await GetLogsAsync("levels", "")).RootElement.EnumerateArray().Select(l => l.GetProperty("level").GetString()).ToList();
        var errors = JsonDocument.Parse(await GetLogsAsync("levels", "&level=warn")).RootElement.EnumerateArray().Select(l => l.GetProperty("level").GetString()).ToList();

        Assert.Contains("INFO", all);
        Assert.Contains("ERROR", all);
        Assert.NotEmpty(errors);
        Assert.All(errors, level => Assert.True(level is "ERROR" or "WARN", level));
        using var bad = new HttpRequestMessage(HttpMethod.Get, "/v1/databases/levels/logs?level=loud");
        bad.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await Server.OwnerTokenAsync());
        var refused = await Server.Http.SendAsync(bad);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("ERROR, WARN, INFO, DEBUG, TRACE", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_hub_streams_the_same_lines_to_the_owner_and_refuses_anyone_else()
    {
        (await Server.PublishAsync("hubby", "faulty")).EnsureSuccessStatusCode();
        await Server.CallAsync("hubby", "shouts", "[1, 2]");
        await using var owner = await Server.ConnectHubAsync(await Server.OwnerTokenAsync());
        await using var stranger = await Server.ConnectHubAsync((await Server.NewIdentityAsync()).Token);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        await using var lines = owner.StreamAsync<JsonElement>("Logs", "hubby", "INFO", 10, timeout.Token).GetAsyncEnumerator(timeout.Token);
        Assert.True(await lines.MoveNextAsync());
        Assert.Equal("xx", lines.Current.GetProperty("message").GetString());
        await Server.CallAsync("hubby", "shouts", "[1, 5]");
        Assert.True(await lines.MoveNextAsync());
        Assert.Equal("xxxxx", lines.Current.GetProperty("message").GetString());

        var refused = await Assert.ThrowsAsync<Microsoft.AspNetCore.SignalR.HubException>(async () =>
        {
            await foreach (var line in stranger.StreamAsync<JsonElement>("Logs", "hubby", null, 10, timeout.Token))
            {
                Assert.Fail($"a stranger read {line}");
            }
        });
        Assert.Contains("only the owner", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_follower_that_disconnects_frees_its_place()
    {
        (await Server.PublishAsync("quiet", "faulty")).EnsureSuccessStatusCode();
        using (var first = await FollowAsync("quiet"))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }
        for (var waited = 0; ; waited += 100)
        {
            using var next = await FollowAsync("quiet");
            if (next.StatusCode == HttpStatusCode.OK)
            {
                break;
            }
            Assert.True(waited < 10_000, $"the place was not freed: {next.StatusCode}");
            await Task.Delay(100);
        }
    }

    private async Task<string> GetLogsAsync(string database, string query)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/databases/{database}/logs?limit=100{query}");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await Server.OwnerTokenAsync());
        return await (await Server.Http.SendAsync(request)).Content.ReadAsStringAsync();
    }

    private async Task<HttpResponseMessage> FollowAsync(string database)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/databases/{database}/logs?follow=true&limit=10");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await Server.OwnerTokenAsync());
        return await Server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    }

    private static async Task<string> NextMessageAsync(IAsyncEnumerator<SseItem<string>> events)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(timeout.Token));
        Assert.Equal("log", events.Current.EventType);
        using var line = JsonDocument.Parse(events.Current.Data);
        return line.RootElement.GetProperty("message").GetString()!;
    }
}
