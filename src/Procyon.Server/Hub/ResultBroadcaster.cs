using System.Threading.Channels;
using Microsoft.AspNetCore.SignalR;
using Procyon.Runtime;

namespace Procyon.Server.Hub;

/// <summary>
/// Takes every call's result off the call's path and hands it to this server's listeners (or,
/// with Redis, to every replica's). Calls only enqueue; one background loop fans out, and it
/// never waits for a connection: each has an outbox of its own.
/// </summary>
internal sealed partial class ResultBroadcaster(ResultListeners listeners, ILogger<ResultBroadcaster> logger, RedisResultRelay? relay = null)
    : BackgroundService, IResultSink
{
    /// <summary>Results waiting to be fanned out; beyond this the newest are dropped and counted in the log.</summary>
    private const int Capacity = 65_536;

    private readonly Channel<CallResult> _pending = Channel.CreateBounded<CallResult>(
        new BoundedChannelOptions(Capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });

    /// <summary>Alone, a result nobody here listens to goes nowhere; with Redis, another replica may listen.</summary>
    public bool Listens(string database) => relay is not null || listeners.Listens(database);

    public void Publish(CallResult result)
    {
        if (!_pending.Writer.TryWrite(result))
        {
            Telemetry.HubTelemetry.ResultDropped(result, Telemetry.HubTelemetry.DropReason.Queue);
            LogDropped(result.Db, result.Fn);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await foreach (var result in _pending.Reader.ReadAllAsync(stoppingToken))
        {
            try
            {
                if (relay is not null)
                {
                    relay.Publish(result);
                }
                else
                {
                    listeners.Deliver(result);
                }
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
        services.AddValidatedOptions<HubOptions>(configuration, HubOptions.Section);
        services.AddSignalR(hub => hub.MaximumReceiveMessageSize = MaxClientMessageBytes);
        services.AddSingleton<HubLifetimeManager<ProcyonHub>, OutboxHubLifetimeManager>();
        services.AddSingleton<ResultListeners>();
        // With Redis configured, results reach listeners connected to any replica.
        if (configuration.GetConnectionString("Redis") is { Length: > 0 } redis)
        {
            services.AddSingleton(sp => ActivatorUtilities.CreateInstance<RedisResultRelay>(sp, redis));
            services.AddHostedService(sp => sp.GetRequiredService<RedisResultRelay>());
        }
        services.AddSingleton<ResultBroadcaster>();
        services.AddSingleton<IResultSink>(sp => sp.GetRequiredService<ResultBroadcaster>());
        services.AddHostedService(sp => sp.GetRequiredService<ResultBroadcaster>());
        return services;
    }
}
