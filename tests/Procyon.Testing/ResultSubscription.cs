using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.SignalR.Client;

namespace Procyon.Testing;

/// <summary>A hub connection subscribed to results, collecting every <c>Result</c> it is pushed.</summary>
public sealed class ResultSubscription : IAsyncDisposable
{
    private readonly Channel<JsonElement> _results = Channel.CreateUnbounded<JsonElement>();

    private ResultSubscription(HubConnection hub)
    {
        Hub = hub;
        hub.On<JsonElement>("Result", result => _results.Writer.TryWrite(result));
    }

    public HubConnection Hub { get; }

    public static async Task<ResultSubscription> StartAsync(TestServer server, string database, string? function)
    {
        var subscription = new ResultSubscription(await server.ConnectHubAsync());
        await subscription.Hub.InvokeAsync("Subscribe", database, function);
        return subscription;
    }

    /// <summary>The next result of <paramref name="function"/>, skipping others; fails after 10 s.</summary>
    public async Task<JsonElement> NextAsync(string function)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await foreach (var result in _results.Reader.ReadAllAsync(timeout.Token))
        {
            if (result.GetProperty("fn").GetString() == function)
            {
                return result;
            }
        }
        throw new InvalidOperationException("the subscription ended");
    }

    /// <summary>True when a result is waiting right now.</summary>
    public bool HasMore => _results.Reader.TryPeek(out _);

    public ValueTask DisposeAsync() => Hub.DisposeAsync();
}
