using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Procyon.Storage;
using Procyon.Storage.Tables;

namespace Procyon.Runtime.Scheduling;

/// <summary>
/// Runs the rows of scheduled tables when they come due. Rows live only in Postgres. One planner
/// sleeps until the earliest due row (waking early when a scheduled table changes anywhere, by
/// LISTEN/NOTIFY) and wakes a worker; workers lease due rows with FOR UPDATE SKIP LOCKED (so
/// servers never run the same row at once), run reducer rows in batches, start procedure rows
/// in slots of their own, and bring in another worker while there is more due than one can take.
/// The <see cref="LeaseKeeper"/> renews the leases of rows running here and hands them back on
/// shutdown. A table whose own query or run fails is skipped for a back-off of its own while the
/// others go on.
/// </summary>
public sealed partial class Scheduler(
    ModuleRegistry registry,
    CallDispatcher dispatcher,
    LeaseKeeper leases,
    NpgsqlDataSource dataSource,
    IOptions<SchedulerOptions> options,
    ILogger<Scheduler> logger) : BackgroundService
{
    /// <summary>How long a failed round waits before it tries again; also a failing table's first back-off.</summary>
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    /// <summary>The longest a failing table is skipped: its back-off doubles from <see cref="RetryDelay"/> up to this.</summary>
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long one table's planning or claim query may take. A table locked by another tenant's
    /// transaction (a clearing publish, say) would otherwise stall the planner or a worker for
    /// everyone; past this the table backs off alone.
    /// </summary>
    private static readonly TimeSpan TableQueryTimeout = TimeSpan.FromSeconds(1);

    /// <summary>How long the planner waits for a woken worker's claim before it looks again.</summary>
    private static readonly TimeSpan ClaimWait = TimeSpan.FromMilliseconds(200);

    private readonly SemaphoreSlim _work = new(0);
    private readonly SemaphoreSlim _procedureSlots = new(options.Value.MaxRunningProcedures);
    private CancellationTokenSource _pulse = new();

    /// <summary>Procedure runs under way, which shutdown waits for before it hands their rows back.</summary>
    private readonly ConcurrentDictionary<Task, bool> _runs = new();

    /// <summary>
    /// Tables backing off after failures of their own. Keyed by the loaded table: a module loaded
    /// again or replaced brings new ones, tried at once; an unloaded module's drop out with it.
    /// </summary>
    private readonly ConditionalWeakTable<TableSchema, Backoff> _failing = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Modules load after the scheduler starts (and come and go): look again each time.
        registry.Changed += Pulse;
        try
        {
            await Task.WhenAll(Enumerable.Range(0, options.Value.Workers).Select(_ => WorkAsync(stoppingToken))
                .Append(PlanAsync(stoppingToken)).Append(ListenAsync(stoppingToken)).Append(leases.RenewAsync(stoppingToken)));
        }
        finally
        {
            // Runs cut short by the shutdown leave their rows unfinished: once they have all
            // stopped, those rows go back, due now, to run elsewhere (at least once).
            await Task.WhenAll(_runs.Keys);
            await leases.HandBackAsync(CancellationToken.None);
        }
    }

    /// <summary>Sleeps until the earliest due row of any scheduled table, or a pulse, then wakes a worker.</summary>
    private async Task PlanAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            var pulse = _pulse.Token;
            var wait = options.Value.MaxIdle;
            try
            {
                foreach (var (_, table) in ScheduledTables())
                {
                    if (await NextLookAsync(table, stoppingToken) is { } due)
                    {
                        wait = TimeSpan.FromTicks(Math.Clamp((due - DateTimeOffset.UtcNow).Ticks, 0, wait.Ticks));
                    }
                }
                if (wait == TimeSpan.Zero)
                {
                    // The worker pulses once it has leased the rows (their due times move on).
                    Wake();
                    wait = ClaimWait;
                }
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                LogFailed(e);
                wait = RetryDelay;
            }
            await SleepAsync(wait, pulse, stoppingToken);
        }
    }

    /// <summary>When the planner looks at a table next: its earliest due row, or the end of its back-off.</summary>
    private async Task<DateTimeOffset?> NextLookAsync(TableSchema table, CancellationToken stoppingToken)
    {
        if (RetryAt(table) is { } retry)
        {
            return retry;
        }
        try
        {
            // No reset on success: a table whose claims fail may still answer this query.
            using var bounded = Bounded(stoppingToken);
            return await DatabaseTransaction.NextDueAsync(dataSource, table, bounded.Token);
        }
        catch (Exception e) when (IsTableFailure(e, stoppingToken))
        {
            BackOff(table, e);
            return RetryAt(table);
        }
    }

    /// <summary>One worker: once woken, leases and runs due rows until none are left.</summary>
    private async Task WorkAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            await _work.WaitAsync(stoppingToken);
            try
            {
                var ran = false;
                while (await RunDueAsync(stoppingToken))
                {
                    ran = true;
                }
                if (ran)
                {
                    // Nothing left that this worker could lease: the planner decides when to look next.
                    Pulse();
                }
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // Whatever went wrong with one run, the worker lives on to run the others.
                LogFailed(e);
                await Task.Delay(RetryDelay, stoppingToken);
            }
        }
    }

    /// <summary>Leases and runs due rows of each scheduled table not backing off. False when none were due.</summary>
    private async Task<bool> RunDueAsync(CancellationToken stoppingToken)
    {
        var ran = false;
        foreach (var (module, table) in ScheduledTables())
        {
            if (RetryAt(table) is not null)
            {
                continue;
            }
            try
            {
                ran |= await RunDueAsync(module, table, stoppingToken);
            }
            catch (Exception e) when (IsTableFailure(e, stoppingToken))
            {
                // Rows it leased run when their lease ends; the other tables go on now.
                BackOff(table, e);
            }
        }
        return ran;
    }

    /// <summary>
    /// Leases due rows of one table: runs a batch of reducer rows, or starts procedure rows (up to
    /// the free procedure slots) without waiting for them. False when none were due.
    /// </summary>
    private async Task<bool> RunDueAsync(LoadedModule module, TableSchema table, CancellationToken stoppingToken)
    {
        var procedure = module.Description.Find(table.ScheduledFunction!)!.Kind == FunctionKind.Procedure;
        var limit = procedure ? Math.Min(_procedureSlots.CurrentCount, options.Value.BatchSize) : options.Value.BatchSize;
        if (limit == 0)
        {
            return false;
        }
        var lease = procedure ? options.Value.ProcedureLease : options.Value.ReducerLease;
        List<ClaimedRow> claimed;
        using (var bounded = Bounded(stoppingToken))
        {
            claimed = await leases.ClaimAsync(table, lease, limit, bounded.Token);
        }
        if (claimed.Count == 0)
        {
            return false;
        }
        // The planner looks again: the leased rows are due only when their lease ends.
        Pulse();
        if (procedure)
        {
            foreach (var row in claimed)
            {
                await _procedureSlots.WaitAsync(stoppingToken);
                var run = RunProcedureAsync(module, table, row, stoppingToken);
                _runs[run] = true;
                _ = run.ContinueWith(ran => _runs.TryRemove(ran, out _), TaskScheduler.Default);
            }
            return true;
        }
        if (claimed.Count == limit)
        {
            // More may be due than this batch took: another worker helps.
            Wake();
        }
        await dispatcher.RunScheduledAsync(module, table, claimed, leases, stoppingToken);
        _failing.Remove(table);
        // Finished rows are gone or due at their next interval, sooner than their lease.
        Pulse();
        return true;
    }

    /// <summary>One procedure run in a slot of its own: it may sleep for long, and holds no worker meanwhile.</summary>
    private async Task RunProcedureAsync(LoadedModule module, TableSchema table, ClaimedRow row, CancellationToken stoppingToken)
    {
        try
        {
            await dispatcher.RunScheduledAsync(module, table, [row], leases, stoppingToken);
            _failing.Remove(table);
        }
        catch (Exception e) when (IsTableFailure(e, stoppingToken))
        {
            // Its lease runs out and the row runs again (at least once); the table backs off meanwhile.
            BackOff(table, e);
        }
        catch (Exception e) when (!stoppingToken.IsCancellationRequested)
        {
            LogFailed(e);
        }
        catch (Exception) when (stoppingToken.IsCancellationRequested)
        {
            // The server is stopping: the row is handed back once every run has stopped.
        }
        finally
        {
            _procedureSlots.Release();
            Pulse();
        }
    }

    private void Wake()
    {
        if (_work.CurrentCount < options.Value.Workers)
        {
            _work.Release();
        }
    }

    /// <summary>Waits for <paramref name="wait"/> or a pulse, whichever comes first.</summary>
    private static async Task SleepAsync(TimeSpan wait, CancellationToken pulse, CancellationToken stoppingToken)
    {
        using var wake = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, pulse);
        await Task.Delay(wait, wake.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        stoppingToken.ThrowIfCancellationRequested();
    }

    private List<(LoadedModule Module, TableSchema Table)> ScheduledTables() =>
        registry.All
            .SelectMany(module => module.Tables.Values.Where(t => t.ScheduledFunction is not null).Select(table => (module, table)))
            .ToList();

    /// <summary>
    /// A failure of one table's query or run, not of Postgres itself (a transient failure: the
    /// connection or the server's resources), which is everyone's and fails the whole round.
    /// </summary>
    private static bool IsTableFailure(Exception e, CancellationToken stoppingToken) =>
        !stoppingToken.IsCancellationRequested && e is not NpgsqlException { IsTransient: true };

    private static CancellationTokenSource Bounded(CancellationToken stoppingToken)
    {
        var bounded = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        bounded.CancelAfter(TableQueryTimeout);
        return bounded;
    }

    /// <summary>When a table backing off is tried again; null when it is not backing off.</summary>
    private DateTimeOffset? RetryAt(TableSchema table) => _failing.TryGetValue(table, out var backoff) ? backoff.RetryAt : null;

    /// <summary>Skips a table for its next back-off, and says why once per back-off, not per failure.</summary>
    private void BackOff(TableSchema table, Exception e)
    {
        if (_failing.GetOrCreateValue(table).Fail() is not { } delay)
        {
            return;
        }
        if (e is PostgresException { SqlState: PostgresErrorCodes.UndefinedTable } gone)
        {
            // Another server deleted or cleared the database; its change notice unloads the module here.
            LogTableGone(table.Database, table.Name, gone.MessageText, delay);
        }
        else
        {
            LogTableFailed(table.Database, table.Name, delay, e);
        }
    }

    /// <summary>Wakes the planner: a scheduled row changed (NOTIFY), a worker leased rows, or a module was loaded or dropped here (<see cref="ModuleRegistry.Changed"/>).</summary>
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
        _work.Dispose();
        _procedureSlots.Dispose();
        base.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "A scheduled run or the scheduler's connection failed; trying again shortly")]
    private partial void LogFailed(Exception exception);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Scheduled table {Table} of database {Database} is gone ({Reason}); skipping it for {Delay} while its module unloads")]
    private partial void LogTableGone(string database, string table, string reason, TimeSpan delay);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Scheduled table {Table} of database {Database} failed; skipping it for {Delay}")]
    private partial void LogTableFailed(string database, string table, TimeSpan delay, Exception exception);

    /// <summary>A table's back-off: it is skipped until it ends, and each failure after it doubles the next.</summary>
    private sealed class Backoff
    {
        private readonly Lock _lock = new();
        private TimeSpan _delay;
        private long _until;

        public DateTimeOffset? RetryAt
        {
            get
            {
                var until = Volatile.Read(ref _until);
                return until > DateTimeOffset.UtcNow.UtcTicks ? new DateTimeOffset(until, TimeSpan.Zero) : null;
            }
        }

        /// <summary>Starts the next back-off and returns its length; null while one runs (another worker failed on the table meanwhile).</summary>
        public TimeSpan? Fail()
        {
            lock (_lock)
            {
                if (RetryAt is not null)
                {
                    return null;
                }
                _delay = _delay == TimeSpan.Zero ? RetryDelay : TimeSpan.FromTicks(Math.Min(_delay.Ticks * 2, MaxBackoff.Ticks));
                Volatile.Write(ref _until, DateTimeOffset.UtcNow.UtcTicks + _delay.Ticks);
                return _delay;
            }
        }
    }
}
