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
/// Runs the rows of scheduled tables when they come due. Rows live only in Postgres; the due index
/// (<see cref="ScheduleStore"/>) holds each scheduled table's earliest due time. One planner sleeps
/// until the earliest of the index (one query, however many tables there are; waking early when a
/// scheduled table changes anywhere, by LISTEN/NOTIFY) and wakes a worker; workers bring the index
/// rows of changed tables up to date, then lease the due rows of the tables the index says have
/// some, with FOR UPDATE SKIP LOCKED (so servers never run the same row at once), run reducer
/// rows in batches, start procedure rows in slots of their own, and bring in another worker while
/// there is more due than one can take. The <see cref="LeaseKeeper"/> renews the leases of rows
/// running here and hands them back on shutdown. A table whose own query or run fails is skipped
/// for a back-off of its own while the others go on.
/// </summary>
public sealed partial class Scheduler(
    ModuleRegistry registry,
    ScheduledRuns runs,
    LeaseKeeper leases,
    ScheduleStore store,
    NpgsqlDataSource dataSource,
    IOptions<SchedulerOptions> options,
    ILogger<Scheduler> logger) : BackgroundService
{
    /// <summary>How long a failed round waits before it tries again; also a failing table's first back-off.</summary>
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    /// <summary>The longest a failing table is skipped: its back-off doubles from <see cref="RetryDelay"/> up to this.</summary>
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long one table's claim, refresh, lease renewal or a batch's wait for its lock may
    /// take. A table locked by another tenant's transaction (a clearing publish, say) would
    /// otherwise stall a worker, or every batch's pin, for everyone; past this the table backs
    /// off alone.
    /// </summary>
    internal static readonly TimeSpan TableQueryTimeout = TimeSpan.FromSeconds(1);

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

    /// <summary>
    /// Tables whose index row may be behind their rows: a module changed them (NOTIFY), runs
    /// finished, or a refresh failed. Workers refresh them before they look for due tables.
    /// </summary>
    private readonly ConcurrentDictionary<TableSchema, bool> _stale = new();

    /// <summary>
    /// Index rows of tables not loaded here (a module another replica just published, or one this
    /// server could not load), by <see cref="ScheduleStore.KeyOf"/>: skipped until modules change.
    /// Guarded by <see cref="_unknownLock"/> together with <see cref="_generation"/>.
    /// </summary>
    private readonly HashSet<string> _unknown = [];

    private readonly Lock _unknownLock = new();

    /// <summary>Counts module changes, so that a table found missing before one is not marked unknown after it.</summary>
    private long _generation;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Modules load after the scheduler starts (and come and go): look again each time.
        registry.Changed += OnModulesChanged;
        using var observed = ProcyonTelemetry.Observe(leases);
        try
        {
            await Task.WhenAll(Enumerable.Range(0, options.Value.Workers).Select(_ => WorkAsync(stoppingToken))
                .Append(PlanAsync(stoppingToken)).Append(ListenAsync(stoppingToken)).Append(leases.RenewAsync(stoppingToken)));
        }
        finally
        {
            registry.Changed -= OnModulesChanged;
            // Runs cut short by the shutdown leave their rows unfinished: once they have all
            // stopped, those rows go back, due now, to run elsewhere (at least once).
            await Task.WhenAll(_runs.Keys);
            await leases.HandBackAsync(CancellationToken.None);
        }
    }

    /// <summary>A module was loaded, replaced or dropped here: tables skipped as unknown may be loaded now, and the planner looks again.</summary>
    private void OnModulesChanged()
    {
        lock (_unknownLock)
        {
            _generation++;
            _unknown.Clear();
        }
        Pulse();
    }

    /// <summary>Sleeps until the earliest due time of the index (or a table's back-off end), or a pulse, then wakes a worker.</summary>
    private async Task PlanAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            var pulse = _pulse.Token;
            var wait = options.Value.MaxIdle;
            try
            {
                if (await NextLookAsync(stoppingToken) is { } due)
                {
                    wait = TimeSpan.FromTicks(Math.Clamp((due - DateTimeOffset.UtcNow).Ticks, 0, wait.Ticks));
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

    /// <summary>When the planner looks next: the earliest due time of a table loaded here and not backing off, or the end of a back-off.</summary>
    private async Task<DateTimeOffset?> NextLookAsync(CancellationToken stoppingToken)
    {
        var (skip, retry) = Skipped();
        var generation = Generation;
        while (await store.NextDueAsync(skip, stoppingToken) is { } next)
        {
            if (Find(next) is not null)
            {
                return retry < next.Due ? retry : next.Due;
            }
            MarkUnknown(next, generation);
            skip.Add(ScheduleStore.KeyOf(next.Database, next.Table));
        }
        return retry;
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

    /// <summary>
    /// Refreshes stale tables, then leases and runs due rows of each table the index says has
    /// some, loaded here and not backing off. False when there was nothing to do.
    /// </summary>
    private async Task<bool> RunDueAsync(CancellationToken stoppingToken)
    {
        var ran = await RefreshStaleAsync(stoppingToken);
        var generation = Generation;
        foreach (var due in await store.DueTablesAsync(Skipped().Keys, stoppingToken))
        {
            if (Find(due) is not var (module, table))
            {
                MarkUnknown(due, generation);
                continue;
            }
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
    /// Brings the index rows of up to a batch of stale tables up to date, each within the table
    /// query timeout; a table backing off stays stale until its back-off ends. True when it
    /// refreshed any (the planner looks again).
    /// </summary>
    private async Task<bool> RefreshStaleAsync(CancellationToken stoppingToken)
    {
        var refreshed = false;
        foreach (var table in _stale.Keys.Where(table => RetryAt(table) is null).Take(options.Value.BatchSize))
        {
            if (!_stale.TryRemove(table, out _) || !IsLoaded(table))
            {
                // Another worker took it, or its module was replaced or dropped (a new one is refreshed itself).
                continue;
            }
            try
            {
                using var bounded = Bounded(stoppingToken);
                await store.RefreshAsync(table, bounded.Token);
                refreshed = true;
            }
            catch (Exception e) when (IsTableFailure(e, stoppingToken))
            {
                BackOff(table, e);
                _stale.TryAdd(table, true);
            }
            catch
            {
                // Postgres itself failed (or the server stops): the table stays stale for the next round.
                _stale.TryAdd(table, true);
                throw;
            }
        }
        return refreshed;
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
        await runs.RunAsync(module, table, claimed, stoppingToken);
        _failing.Remove(table);
        // Finished rows are gone or due at their next interval, maybe sooner than their lease:
        // this worker refreshes the table next.
        _stale.TryAdd(table, true);
        return true;
    }

    /// <summary>One procedure run in a slot of its own: it may sleep for long, and holds no worker meanwhile.</summary>
    private async Task RunProcedureAsync(LoadedModule module, TableSchema table, ClaimedRow row, CancellationToken stoppingToken)
    {
        try
        {
            await runs.RunAsync(module, table, [row], stoppingToken);
            _failing.Remove(table);
            MarkStale(table);
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

    private List<TableSchema> ScheduledTables() =>
        registry.All.SelectMany(module => module.Tables.Values.Where(t => t.ScheduledFunction is not null)).ToList();

    /// <summary>The loaded module and scheduled table an index row names; null when it is not loaded here.</summary>
    private (LoadedModule Module, TableSchema Table)? Find(DueTable due) =>
        registry.Find(due.Database) is { } module && module.Tables.GetValueOrDefault(due.Table) is { ScheduledFunction: not null } table
            ? (module, table)
            : null;

    /// <summary>Whether <paramref name="table"/> is the one loaded here now, not one of a module since replaced or dropped.</summary>
    private bool IsLoaded(TableSchema table) => registry.Find(table.Database)?.Tables.GetValueOrDefault(table.Name) == table;

    private long Generation
    {
        get
        {
            lock (_unknownLock)
            {
                return _generation;
            }
        }
    }

    /// <summary>Skips an index row of a table not loaded here, unless modules changed since <paramref name="generation"/> (it may be loaded now).</summary>
    private void MarkUnknown(DueTable due, long generation)
    {
        lock (_unknownLock)
        {
            if (generation == _generation)
            {
                _unknown.Add(ScheduleStore.KeyOf(due.Database, due.Table));
            }
        }
    }

    /// <summary>The index rows to skip (tables backing off or not loaded here), and when the first back-off ends.</summary>
    private (List<string> Keys, DateTimeOffset? Retry) Skipped()
    {
        List<string> keys;
        lock (_unknownLock)
        {
            keys = [.. _unknown];
        }
        DateTimeOffset? retry = null;
        foreach (var (table, backoff) in _failing)
        {
            // A replaced module's table may still back off; the table of the same name now loaded does not.
            if (backoff.RetryAt is { } at && IsLoaded(table))
            {
                keys.Add(ScheduleStore.KeyOf(table.Database, table.Name));
                retry = retry is null || at < retry ? at : retry;
            }
        }
        return (keys, retry);
    }

    /// <summary>A table's index row may be behind its rows: a worker refreshes it.</summary>
    private void MarkStale(TableSchema table)
    {
        _stale.TryAdd(table, true);
        Wake();
    }

    /// <summary>
    /// A failure of one table's query or run, not of Postgres itself (a transient failure: the
    /// connection or the server's resources), which is everyone's and fails the whole round. A
    /// lock timeout is the table's own (another tenant's transaction holds it), though Npgsql
    /// counts it transient: it must not stall the worker for every database.
    /// </summary>
    private static bool IsTableFailure(Exception e, CancellationToken stoppingToken) =>
        !stoppingToken.IsCancellationRequested
        && (e is not NpgsqlException { IsTransient: true } || e is PostgresException { SqlState: PostgresErrorCodes.LockNotAvailable });

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

    /// <summary>Wakes the planner: a scheduled row changed (NOTIFY), a worker leased rows or refreshed the index, or a module was loaded or dropped here (<see cref="ModuleRegistry.Changed"/>).</summary>
    private void Pulse()
    {
        // Not disposed: a worker may be reading the old token right now; cancelled sources hold nothing.
        Interlocked.Exchange(ref _pulse, new CancellationTokenSource()).Cancel();
    }

    /// <summary>
    /// A module inserted or rescheduled rows of the database whose schema is <paramref name="payload"/>
    /// (the due-time trigger), or a server handed rows back (empty: it refreshed the index itself).
    /// </summary>
    private void OnScheduleChanged(string payload)
    {
        if (Sql.DatabaseOfSchema(payload) is { } database && registry.Find(database) is { } module)
        {
            foreach (var table in module.Tables.Values.Where(t => t.ScheduledFunction is not null))
            {
                MarkStale(table);
            }
        }
        Pulse();
    }

    private async Task ListenAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(stoppingToken);
                connection.Notification += (_, notification) => OnScheduleChanged(notification.Payload);
                await using (var listen = new NpgsqlCommand($"LISTEN {Sql.ScheduleChannel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                }
                // Changes notified while this server was not listening are lost: every table may be stale.
                foreach (var table in ScheduledTables())
                {
                    MarkStale(table);
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
