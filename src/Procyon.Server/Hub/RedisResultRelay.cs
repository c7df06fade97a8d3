using System.Text.Json;
using Procyon.Runtime;
using StackExchange.Redis;

namespace Procyon.Server.Hub;

/// <summary>
/// Carries every result to every replica over Redis, one channel per database; each replica
/// delivers to its own listeners, and skips reading the results of databases nobody there listens to.
/// </summary>
internal sealed partial class RedisResultRelay(string configuration, ResultListeners listeners, ILogger<RedisResultRelay> logger) : IHostedService, IAsyncDisposable
{
    private const string Prefix = "procyon:results:";
    /// <summary>Values nest up to <see cref="Sats.ValueLimits.MaxDepth"/>, inside the relayed result's own two levels: deeper than the default of 64.</summary>
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { MaxDepth = Sats.ValueLimits.MaxDepth + 2 };

    private ConnectionMultiplexer? _redis;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _redis = await ConnectionMultiplexer.ConnectAsync(configuration).WaitAsync(cancellationToken);
        var results = await _redis.GetSubscriber().SubscribeAsync(RedisChannel.Pattern(Prefix + "*")).WaitAsync(cancellationToken);
        // One message at a time, so every connection gets results in the order they were made.
        results.OnMessage(message => Receive(((string)message.Channel!)[Prefix.Length..], message.Message));
    }

    public void Publish(CallResult result) =>
        _redis?.GetSubscriber().Publish(RedisChannel.Literal(Prefix + result.Db), JsonSerializer.SerializeToUtf8Bytes(new RelayedResult(result, result.Audience), Json), CommandFlags.FireAndForget);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }
    }

    private void Receive(string db, RedisValue message)
    {
        if (!listeners.Listens(db))
        {
            return;
        }
        try
        {
            var relayed = JsonSerializer.Deserialize<RelayedResult>(((ReadOnlyMemory<byte>)message).Span, Json)!;
            listeners.Deliver(relayed.Result with { Audience = relayed.Audience });
        }
        catch (JsonException e)
        {
            LogUnreadable(e);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "A result relayed through Redis could not be read")]
    private partial void LogUnreadable(Exception exception);
}

/// <summary>A result as it crosses Redis: its audience travels with it (the hub's clients never see that).</summary>
internal sealed record RelayedResult(CallResult Result, ResultAudience Audience);
