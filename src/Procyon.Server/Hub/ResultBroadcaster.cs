using System.Threading.Channels;
using Microsoft.AspNetCore.SignalR;
using Procyon.Runtime;

namespace Procyon.Server.Hub;

/// <summary>
/// Pushes every call's result to the subscribers of its database and of its function. Calls
/// only enqueue; one background loop sends, so a slow client never delays a call.
/// </summary>
internal sealed partial class ResultBroadcaster(IHubContext<ProcyonHub, IProcyonClient> hub, ResultFeed feed, IServiceProvider services, ILogger<ResultBroadcaster> logger)
    : BackgroundService, IResultSink
{
    /// <summary>Results waiting to be sent; beyond this the newest are dropped and counted in the log.</summary>
    private const int Capacity = 65_536;

    private readonly Channel<CallResult> _pending = Channel.CreateBounded<CallResult>(
        new BoundedChannelOptions(Capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });

    public void Publish(CallResult result)
    {
        if (!_pending.Writer.TryWrite(result))
        {
            LogDropped(result.Db, result.Fn);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await foreach (var result in _pending.Reader.ReadAllAsync(stoppingToken))
        {
            try
            {
                if (services.GetService<RedisResultRelay>() is { } relay)
                {
                    relay.Publish(result);
                }
                else
                {
                    feed.Deliver(result);
                }
                await hub.Clients.Groups(ResultGroups.Of(result)).Result(result);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogSendFailed(e, result.Db, result.Fn);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Result queue full; a result of {Db}/{Fn} was not pushed to subscribers")]
    private partial void LogDropped(string db, string fn);

    [LoggerMessage(Level = LogLevel.Error, Message = "Pushing a result of {Db}/{Fn} to subscribers failed")]
    private partial void LogSendFailed(Exception exception, string db, string fn);
}

internal static class HubServiceCollectionExtensions
{
    /// <summary>Largest message a client may send (a call's arguments included); beyond it the connection is closed.</summary>
    public const long MaxClientMessageBytes = 1 << 20;

    public static IServiceCollection AddProcyonHub(this IServiceCollection services, IConfiguration configuration)
    {
        var signalR = services.AddSignalR(hub => hub.MaximumReceiveMessageSize = MaxClientMessageBytes);
        // With Redis configured, results reach subscribers connected to any replica.
        services.AddSingleton<ResultFeed>();
        if (configuration.GetConnectionString("Redis") is { Length: > 0 } redis)
        {
            signalR.AddStackExchangeRedis(redis, options => options.Configuration.ChannelPrefix = StackExchange.Redis.RedisChannel.Literal("procyon"));
            services.AddSingleton(sp => ActivatorUtilities.CreateInstance<RedisResultRelay>(sp, redis));
            services.AddHostedService(sp => sp.GetRequiredService<RedisResultRelay>());
        }
        services.AddSingleton<ResultBroadcaster>();
        services.AddSingleton<IResultSink>(sp => sp.GetRequiredService<ResultBroadcaster>());
        services.AddHostedService(sp => sp.GetRequiredService<ResultBroadcaster>());
        return services;
    }
}
