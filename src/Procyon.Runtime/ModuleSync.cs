using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Procyon.Storage;

namespace Procyon.Runtime;

/// <summary>
/// Keeps this replica's modules in step with the others: LISTENs for the catalog's change
/// notifications and refreshes each database named. Reconnects after losing Postgres.
/// </summary>
public sealed partial class ModuleSync(ModuleStore store, ModuleRegistry registry, ILogger<ModuleSync> logger) : BackgroundService
{
    private static readonly TimeSpan ReconnectDelay = TimeSpan.FromSeconds(2);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var changed = System.Threading.Channels.Channel.CreateUnbounded<string>();
                await using var connection = await store.ListenAsync((_, e) => changed.Writer.TryWrite(e.Payload), stoppingToken);
                var refreshing = RefreshAsync(changed.Reader, stoppingToken);
                while (!stoppingToken.IsCancellationRequested)
                {
                    await connection.WaitAsync(stoppingToken);
                }
                changed.Writer.Complete();
                await refreshing;
            }
            catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or IOException)
            {
                LogDisconnected(e);
                await Task.Delay(ReconnectDelay, stoppingToken);
            }
        }
    }

    /// <summary>Refreshes outside the notification callback, which runs inside Npgsql's read loop.</summary>
    private async Task RefreshAsync(System.Threading.Channels.ChannelReader<string> changed, CancellationToken cancellationToken)
    {
        await foreach (var database in changed.ReadAllAsync(cancellationToken))
        {
            await registry.RefreshAsync(database, cancellationToken);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lost the module change notifications; listening again shortly")]
    private partial void LogDisconnected(Exception exception);
}

/// <summary>Loads the published modules from Postgres before the server takes requests.</summary>
internal sealed class ModuleLoader(ModuleRegistry registry) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => registry.LoadAllAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
