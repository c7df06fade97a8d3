using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Procyon.Storage;

namespace Procyon.Runtime;

/// <summary>
/// Keeps this replica's modules in step with the others: LISTENs for the catalog's change
/// notifications and refreshes each database named. Each time it starts listening (at start, and
/// again after losing Postgres) it compares every database with the catalog, since notifications
/// sent while it was not listening are lost.
/// </summary>
public sealed partial class ModuleSync(ModuleStore store, ModuleRegistry registry, ILogger<ModuleSync> logger) : BackgroundService
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    private readonly System.Threading.Channels.Channel<string> _changed = System.Threading.Channels.Channel.CreateUnbounded<string>();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var refreshing = RefreshAsync(stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await store.ListenAsync((_, e) => _changed.Writer.TryWrite(e.Payload), stoppingToken);
                // What changed while nobody listened (since the modules were loaded, or while Postgres was away).
                await registry.RefreshAllAsync(stoppingToken);
                while (!stoppingToken.IsCancellationRequested)
                {
                    await connection.WaitAsync(stoppingToken);
                }
            }
            catch (Exception e) when (IsPostgresFailure(e) && !stoppingToken.IsCancellationRequested)
            {
                LogDisconnected(e);
                await Task.Delay(RetryDelay, stoppingToken);
            }
        }
        _changed.Writer.Complete();
        await refreshing;
    }

    /// <summary>
    /// Refreshes outside the notification callback, which runs inside Npgsql's read loop. A refresh
    /// that fails for want of Postgres is tried again shortly; it never stops the others.
    /// </summary>
    private async Task RefreshAsync(CancellationToken cancellationToken)
    {
        await foreach (var database in _changed.Reader.ReadAllAsync(cancellationToken))
        {
            try
            {
                await registry.RefreshAsync(database, cancellationToken);
            }
            catch (Exception e) when (IsPostgresFailure(e) && !cancellationToken.IsCancellationRequested)
            {
                LogRefreshFailed(database, e);
                _ = RetryLaterAsync(database, cancellationToken);
            }
        }
    }

    private async Task RetryLaterAsync(string database, CancellationToken cancellationToken)
    {
        await Task.Delay(RetryDelay, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _changed.Writer.TryWrite(database);
    }

    private static bool IsPostgresFailure(Exception e) => e is NpgsqlException or System.Net.Sockets.SocketException or IOException or TimeoutException;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lost the module change notifications; listening again shortly")]
    private partial void LogDisconnected(Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not refresh database {Database}; trying again shortly")]
    private partial void LogRefreshFailed(string database, Exception exception);
}

/// <summary>Loads the published modules from Postgres before the server takes requests.</summary>
internal sealed class ModuleLoader(ModuleRegistry registry) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => registry.LoadAllAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
