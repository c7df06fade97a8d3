using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;
using Procyon.Runtime;
using StackExchange.Redis;

namespace Procyon.Server.Hub;

/// <summary>
/// The results behind the hub's <c>Results(db, fn?)</c> streams. Each replica delivers every
/// result to its own streams: straight from its calls when it runs alone, or from a Redis
/// channel all replicas publish to when <c>ConnectionStrings:Redis</c> is set.
/// </summary>
public sealed class ResultFeed
{
    /// <summary>Results a slow stream reader may fall behind by; older ones are dropped for it.</summary>
    private const int StreamBuffer = 1024;

    private readonly Lock _lock = new();
    private readonly List<(string Db, string? Fn, string? Viewer, ChannelWriter<CallResult> Writer)> _streams = [];

    public void Deliver(CallResult result)
    {
        lock (_lock)
        {
            foreach (var (db, fn, viewer, writer) in _streams)
            {
                if (db == result.Db && (fn is null || fn == result.Fn) && result.Audience.Includes(viewer))
                {
                    writer.TryWrite(result);
                }
            }
        }
    }

    /// <param name="viewer">The reader's identity (hex), or null without a token: it receives only the results it may see.</param>
    public async IAsyncEnumerable<CallResult> ReadAllAsync(string db, string? fn, string? viewer, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var channel = Channel.CreateBounded<CallResult>(new BoundedChannelOptions(StreamBuffer) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        var stream = (db, fn, viewer, channel.Writer);
        lock (_lock)
        {
            _streams.Add(stream);
        }
        try
        {
            await foreach (var result in channel.Reader.ReadAllAsync(cancellationToken))
            {
                yield return result;
            }
        }
        finally
        {
            lock (_lock)
            {
                _streams.Remove(stream);
            }
        }
    }
}

/// <summary>Relays results between replicas over Redis for the streams (SignalR's backplane covers groups).</summary>
internal sealed partial class RedisResultRelay(string configuration, ResultFeed feed, ILogger<RedisResultRelay> logger) : IHostedService, IAsyncDisposable
{
    private static readonly RedisChannel Channel = RedisChannel.Literal("procyon:results");
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private ConnectionMultiplexer? _redis;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _redis = await ConnectionMultiplexer.ConnectAsync(configuration);
        await _redis.GetSubscriber().SubscribeAsync(Channel, (_, message) =>
        {
            try
            {
                var relayed = JsonSerializer.Deserialize<RelayedResult>((string)message!, Json)!;
                feed.Deliver(relayed.Result with { Audience = relayed.Audience });
            }
            catch (JsonException e)
            {
                LogUnreadable(e);
            }
        });
    }

    public void Publish(CallResult result)
    {
        if (_redis is null)
        {
            return;
        }
        _redis.GetSubscriber().Publish(Channel, JsonSerializer.Serialize(new RelayedResult(result, result.Audience), Json), CommandFlags.FireAndForget);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Warning, Message = "A result relayed through Redis could not be read")]
    private partial void LogUnreadable(Exception exception);

    public async ValueTask DisposeAsync()
    {
        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }
    }
}

/// <summary>A result as it crosses Redis: its audience travels with it (the hub's clients never see that).</summary>
internal sealed record RelayedResult(CallResult Result, ResultAudience Audience);
