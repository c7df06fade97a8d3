using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;

namespace Procyon.Tests;

/// <summary>Two server processes' worth of servers on one Postgres and a real redis-server.</summary>
public sealed class ScaleOutTests
{
    [Fact]
    public async Task A_subscriber_on_one_replica_receives_the_result_of_a_call_made_on_another()
    {
        using var redis = await RedisServer.StartAsync();
        await using var database = await TestDatabase.CreateAsync();
        var setting = $"--ConnectionStrings:Redis={redis.ConnectionString}";
        await using var first = await TestServer.StartAsync(database, setting);
        (await first.PublishAsync("example", "example")).EnsureSuccessStatusCode();
        await using var second = await TestServer.StartAsync(database, setting);
        await using var results = await ResultSubscription.StartAsync(first, "example", "add");
        var hub = results.Hub;
        using var streaming = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var stream = hub.StreamAsync<JsonElement>("Results", "example", "add", streaming.Token).GetAsyncEnumerator(streaming.Token);
        var streamed = stream.MoveNextAsync().AsTask();
        await Task.Delay(300);

        var response = await second.CallAsync("example", "add", "[20, 22]");

        Assert.Equal("42", await response.Content.ReadAsStringAsync());
        var result = await results.NextAsync("add");
        Assert.Equal(42, result.GetProperty("value").GetInt32());
        Assert.Equal("http", result.GetProperty("origin").GetString());
        Assert.True(await streamed);
        Assert.Equal(42, stream.Current.GetProperty("value").GetInt32());
        await streaming.CancelAsync();
    }

    [Fact]
    public void A_result_as_deep_as_values_may_nest_crosses_redis_as_it_was_written()
    {
        var deep = string.Concat(Enumerable.Repeat("[", Sats.ValueLimits.MaxDepth)) + string.Concat(Enumerable.Repeat("]", Sats.ValueLimits.MaxDepth));
        var result = new Runtime.CallResult
        {
            Db = "deep", Fn = "nest", Origin = "http", Status = "ok", StartedAt = DateTimeOffset.UnixEpoch, DurationMicros = 1, Caller = "00",
            Value = new Runtime.Utf8Json(System.Text.Encoding.UTF8.GetBytes(deep)),
        };

        var wire = JsonSerializer.SerializeToUtf8Bytes(new Server.Hub.RelayedResult(result, Runtime.ResultAudience.Nobody), Server.Hub.RedisResultRelay.Json);
        var relayed = JsonSerializer.Deserialize<Server.Hub.RelayedResult>(wire, Server.Hub.RedisResultRelay.Json)!;

        Assert.Equal(deep, System.Text.Encoding.UTF8.GetString(relayed.Result.Value!.Utf8.Span));
    }

    [Fact]
    public async Task A_module_published_or_deleted_on_one_replica_is_served_or_gone_on_the_other()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var first = await TestServer.StartAsync(database);
        await using var second = await TestServer.StartAsync(database);

        (await first.PublishAsync("example", "example")).EnsureSuccessStatusCode();

        Assert.Equal(HttpStatusCode.OK, await EventuallyAsync(() => second.CallAsync("example", "add", "[1, 2]"), HttpStatusCode.OK));
        await first.DeleteAsync("example");
        Assert.Equal(HttpStatusCode.NotFound, await EventuallyAsync(() => second.CallAsync("example", "add", "[1, 2]"), HttpStatusCode.NotFound));
    }

    /// <summary>The status the call settles on within 10 s (replicas hear of changes through LISTEN/NOTIFY).</summary>
    private static async Task<HttpStatusCode> EventuallyAsync(Func<Task<HttpResponseMessage>> call, HttpStatusCode wanted)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var status = (await call()).StatusCode;
            if (status == wanted || waited.Elapsed > TimeSpan.FromSeconds(10))
            {
                return status;
            }
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task A_hub_message_over_the_size_limit_closes_only_that_connection()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await TestServer.StartAsync(database);
        (await server.PublishAsync("example", "example")).EnsureSuccessStatusCode();
        await using var hub = await server.ConnectHubAsync();
        var closed = new TaskCompletionSource<Exception?>();
        hub.Closed += error =>
        {
            closed.TrySetResult(error);
            return Task.CompletedTask;
        };
        var huge = JsonDocument.Parse($"[\"{new string('x', 2 << 20)}\", 1]").RootElement;

        await Assert.ThrowsAnyAsync<Exception>(() => hub.InvokeAsync<JsonElement>("Call", "example", "greet", huge, "big"));

        await closed.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await using var fresh = await server.ConnectHubAsync();
        var result = await fresh.InvokeAsync<JsonElement>("Call", "example", "add", JsonDocument.Parse("[1, 1]").RootElement, "after");
        Assert.Equal(2, result.GetProperty("value").GetInt32());
    }
}
