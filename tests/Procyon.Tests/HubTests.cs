using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.SignalR.Client;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;

namespace Procyon.Tests;

public sealed class HubTests(ServerFixture fixture) : ServerTest(fixture)
{
    [Fact]
    public async Task Call_returns_the_Result_with_the_request_id()
    {
        await using var hub = await Server.ConnectHubAsync();

        var result = await hub.InvokeAsync<JsonElement>("Call", "example", "add", JsonDocument.Parse("[20, 22]").RootElement, "request-7");

        Assert.Equal("request-7", result.GetProperty("requestId").GetString());
        Assert.Equal("hub", result.GetProperty("origin").GetString());
        Assert.Equal(42, result.GetProperty("value").GetInt32());
    }

    [Fact]
    public async Task Call_with_bad_arguments_returns_an_error_Result_and_keeps_the_connection()
    {
        await using var hub = await Server.ConnectHubAsync();

        var result = await hub.InvokeAsync<JsonElement>("Call", "example", "add", JsonDocument.Parse("""[1, "x"]""").RootElement, null);

        Assert.Equal("error", result.GetProperty("status").GetString());
        Assert.Contains("b: expected i32", result.GetProperty("error").GetString());
        Assert.Equal(HubConnectionState.Connected, hub.State);
    }

    [Fact]
    public async Task Function_subscription_receives_only_that_function()
    {
        await using var hub = await Server.ConnectHubAsync();
        var results = Collect(hub);
        await hub.InvokeAsync("Subscribe", "example", "greet");

        await Server.CallAsync("example", "add", "[1,1]");
        await Server.CallAsync("example", "greet", """["Bo", 1]""");

        var received = await UntilAsync(results, "greet");
        Assert.Equal(["greet"], received.Select(r => r.GetProperty("fn").GetString()));
    }

    [Fact]
    public async Task Subscribing_to_a_database_and_one_of_its_functions_delivers_each_result_once()
    {
        await using var hub = await Server.ConnectHubAsync();
        var results = Collect(hub);
        await hub.InvokeAsync("Subscribe", "example", "add");
        await hub.InvokeAsync("Subscribe", "example", null);
        await hub.InvokeAsync("Subscribe", "example", "add");

        await Server.CallAsync("example", "add", "[3,4]");
        await Server.CallAsync("example", "greet", """["Cy", 1]""");

        var received = await UntilAsync(results, "greet");
        Assert.Single(received, r => r.GetProperty("fn").GetString() == "add");
    }

    [Fact]
    public async Task Unsubscribe_stops_delivery()
    {
        await using var hub = await Server.ConnectHubAsync();
        var results = Collect(hub);
        await hub.InvokeAsync("Subscribe", "example", null);
        await hub.InvokeAsync("Unsubscribe", "example", null);
        await hub.InvokeAsync("Subscribe", "example", "greet");

        await Server.CallAsync("example", "add", "[1,1]");
        await Server.CallAsync("example", "greet", """["Di", 1]""");

        Assert.Equal(["greet"], (await UntilAsync(results, "greet")).Select(r => r.GetProperty("fn").GetString()));
    }

    [Fact]
    public async Task Failed_calls_are_pushed_with_status_error()
    {
        await using var hub = await Server.ConnectHubAsync(await Server.OwnerTokenAsync());
        var results = Collect(hub);
        await hub.InvokeAsync("Subscribe", "faulty", "panics");

        await Server.CallAsync("faulty", "panics", """["boom"]""");

        var result = Assert.Single(await UntilAsync(results, "panics"));
        Assert.Equal("error", result.GetProperty("status").GetString());
        Assert.Contains("boom", result.GetProperty("error").GetString());
        Assert.False(result.TryGetProperty("value", out _));
    }

    [Fact]
    public async Task Results_streams_the_results_of_one_function()
    {
        await using var hub = await Server.ConnectHubAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var stream = hub.StreamAsync<JsonElement>("Results", "example", "greet", timeout.Token).GetAsyncEnumerator(timeout.Token);
        var first = stream.MoveNextAsync().AsTask();
        await Task.Delay(200);

        await Server.CallAsync("example", "add", "[1,1]");
        await Server.CallAsync("example", "greet", """["Stream", 1]""");

        Assert.True(await first);
        Assert.Equal("greet", stream.Current.GetProperty("fn").GetString());
        Assert.Equal("Hello, Stream!", stream.Current.GetProperty("value").GetString());
        await timeout.CancelAsync();
    }

    private static Channel<JsonElement> Collect(HubConnection hub)
    {
        var results = Channel.CreateUnbounded<JsonElement>();
        hub.On<JsonElement>("Result", r => results.Writer.TryWrite(r));
        return results;
    }

    /// <summary>
    /// Everything that arrives up to and including the first result of <paramref name="function"/>.
    /// Results are pushed in call order, so a later call serves as a marker.
    /// </summary>
    private static async Task<List<JsonElement>> UntilAsync(Channel<JsonElement> results, string function)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var received = new List<JsonElement>();
        await foreach (var result in results.Reader.ReadAllAsync(timeout.Token))
        {
            received.Add(result);
            if (result.GetProperty("fn").GetString() == function)
            {
                break;
            }
        }
        return received;
    }
}
