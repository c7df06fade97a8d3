using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Procyon.Storage;
using Procyon.Storage.Tables;

namespace Procyon.Runtime.Scheduling;

/// <summary>
/// Runs the rows of scheduled tables when they come due. Rows live only in Postgres. Workers
/// claim due rows with FOR UPDATE SKIP LOCKED (so replicas never run the same row at once), sleep
/// until the next due time, and wake early when a scheduled table changes anywhere (LISTEN/NOTIFY).
/// </summary>
public sealed partial class Scheduler(
    ModuleRegistry registry,
    CallDispatcher dispatcher,
    NpgsqlDataSource dataSource,
    IOptions<SchedulerOptions> options,
    ILogger<Scheduler> logger) : BackgroundService
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    private CancellationTokenSource _pulse = new();

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Modules load after the scheduler starts (and come and go): look again each time.
        registry.Changed += Pulse;
        return Task.WhenAll(Enumerable.Range(0, options.Value.Workers).Select(_ => WorkAsync(stoppingToken)).Append(ListenAsync(stoppingToken)));
    }

    /// <summary>One worker: run whatever is due, then sleep until the next due time or a pulse.</summary>
    private async Task WorkAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        while (!stoppingToken.IsCancellationRequested)
        {
            var pulse = _pulse.Token;
            try
            {
                var tables = ScheduledTables();
                var ran = false;
                foreach (var (module, table) in tables)
                {
                    ran |= await dispatcher.RunScheduledAsync(module, table, options.Value.ProcedureLease, stoppingToken);
                }
                if (ran)
                {
                    continue;
                }
                var wait = options.Value.MaxIdle;
                foreach (var (_, table) in tables)
                {
                    if (await DatabaseTransaction.NextDueAsync(dataSource, table, stoppingToken) is { } due)
                    {
                        wait = TimeSpan.FromTicks(Math.Clamp((due - DateTimeOffset.UtcNow).Ticks, 0, wait.Ticks));
                    }
                }
                using var wake = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, pulse);
                await Task.Delay(wait, wake.Token);
            }
            catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
            {
                // Pulsed: something changed; look again.
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // Whatever went wrong with one run, the worker lives on to run the others.
                LogFailed(e);
                await Task.Delay(RetryDelay, stoppingToken);
            }
        }
    }

    private List<(LoadedModule Module, TableSchema Table)> ScheduledTables() =>
        registry.All
            .SelectMany(module => module.Tables.Values.Where(t => t.ScheduledFunction is not null).Select(table => (module, table)))
            .ToList();

    /// <summary>Wakes every worker: a scheduled row changed (NOTIFY) or a module was loaded or dropped here (<see cref="ModuleRegistry.Changed"/>).</summary>
    private void Pulse()
    {
        // Not disposed: a worker may be reading the old token right now; cancelled sources hold nothing.
        Interlocked.Exchange(ref _pulse, new CancellationTokenSource()).Cancel();
    }

    private async Task ListenAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(stoppingToken);
                connection.Notification += (_, _) => Pulse();
                await using (var listen = new NpgsqlCommand($"LISTEN {Sql.ScheduleChannel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                }
                Pulse();
                while (!stoppingToken.IsCancellationRequested)
                {
                    await connection.WaitAsync(stoppingToken);
                }
            }
            catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or IOException && !stoppingToken.IsCancellationRequested)
            {
                LogFailed(e);
                await Task.Delay(RetryDelay, stoppingToken);
            }
        }
    }

    public override void Dispose()
    {
        _pulse.Dispose();
        base.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "A scheduled run or the scheduler's connection failed; trying again shortly")]
    private partial void LogFailed(Exception exception);
}
