using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Options;

namespace Procyon.Server.Hub;

/// <summary>
/// SignalR's own bookkeeping of this server's connections, plus each connection's outbox and
/// subscriptions (in its <see cref="HubConnectionContext.Items"/>, where the hub finds them):
/// results reach connections through their outboxes, not through SignalR groups.
/// </summary>
internal sealed class OutboxHubLifetimeManager(
    ResultListeners listeners,
    IOptions<HubOptions> options,
    ILogger<ConnectionOutbox> outboxLogger,
    ILogger<DefaultHubLifetimeManager<ProcyonHub>> logger)
    : DefaultHubLifetimeManager<ProcyonHub>(logger)
{
    public static ConnectionSubscriptions SubscriptionsOf(IDictionary<object, object?> items) => (ConnectionSubscriptions)items[typeof(ConnectionSubscriptions)]!;

    public override async Task OnConnectedAsync(HubConnectionContext connection)
    {
        var outbox = new ConnectionOutbox(connection, options.Value, outboxLogger);
        connection.Items[typeof(ConnectionSubscriptions)] = new ConnectionSubscriptions(listeners, outbox, Auth.Tokens.IdentityOf(connection.User));
        await base.OnConnectedAsync(connection);
        Telemetry.HubTelemetry.Connected(1);
    }

    public override async Task OnDisconnectedAsync(HubConnectionContext connection)
    {
        SubscriptionsOf(connection.Items).Clear();
        await base.OnDisconnectedAsync(connection);
        Telemetry.HubTelemetry.Connected(-1);
    }
}
