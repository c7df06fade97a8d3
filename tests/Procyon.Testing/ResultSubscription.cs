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

    /// <param name="token">The subscriber's identity; none subscribes anonymously (and sees only public functions' results).</param>
    public static async Task<ResultSubscription> StartAsync(ServerHandle server, string database, string? function, string? token = null)
    {
        var subscription = new ResultSubscription(await server.ConnectHubAsync(token));
        await subscription.Hub.InvokeAsync("Subscribe", database, function);
        return subscription;
    }

    /// <summary>Subscribes as the owner of what <paramref name="server"/> published: it sees every result.</summary>
    public static async Task<ResultSubscription> StartAsOwnerAsync(ServerHandle server, string database, string? function) =>
        await StartAsync(server, database, function, await server.OwnerTokenAsync());

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
