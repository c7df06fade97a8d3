using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Procyon.Storage.Tables;

namespace Procyon.Runtime.Scheduling;

/// <summary>
/// The one place that knows which scheduled rows this server holds: those it leased and has not
/// finished or let go. A lease is the row's due time moved to the lease's end, and only the
/// server that set that value renews, finishes or hands back the row. Held rows are renewed every
/// third of the shorter lease, one statement per table, so a live server's rows never run
/// elsewhere however long they take, while a dead server's run elsewhere once their lease ends.
/// Stopping hands every held row back, due at once.
/// </summary>
public sealed partial class LeaseKeeper(ScheduleStore store, IOptions<SchedulerOptions> options, ILogger<LeaseKeeper> logger) : IDisposable
{
    /// <summary>Renewals and hand-backs take turns with each other and with pinning, so none moves a row a transaction is taking over.</summary>
    private readonly SemaphoreSlim _turn = new(1, 1);

    private readonly Lock _lock = new();

    /// <summary>Held rows by table, with their current lease ends. Guarded by <see cref="_lock"/>.</summary>
    private readonly Dictionary<TableSchema, HeldTable> _held = [];

    /// <summary>Leases up to <paramref name="limit"/> due rows of a table (see <see cref="ScheduleStore.ClaimDueAsync"/>) and holds them.</summary>
    public async Task<List<ClaimedRow>> ClaimAsync(TableSchema table, TimeSpan lease, int limit, CancellationToken cancellationToken)
    {
        var claimed = await store.ClaimDueAsync(table, lease, limit, cancellationToken);
        lock (_lock)
        {
            if (!_held.TryGetValue(table, out var held))
            {
                _held[table] = held = new HeldTable(lease);
            }
            foreach (var row in claimed)
            {
                held.Rows[row.ScheduledId] = row;
            }
        }
        return claimed;
    }

    /// <summary>
    /// Runs <paramref name="statement"/>, which locks or finishes rows in a transaction, on those
    /// of <paramref name="rows"/> still held, as they are now (renewals moved their lease ends).
    /// The rows it does not return are let go. Until the pin is disposed no renewal touches the
    /// others: they are the transaction's.
    /// </summary>
    public async Task<Pin> PinAsync(TableSchema table, IEnumerable<ClaimedRow> rows, Func<IReadOnlyList<ClaimedRow>, Task<HashSet<long>>> statement, CancellationToken cancellationToken)
    {
        List<ClaimedRow> current;
        // After the renewal under way, if any: every later one skips pinned rows, so the lease
        // ends read here stay true while the statement runs (which may wait on row locks).
        await _turn.WaitAsync(cancellationToken);
        try
        {
            lock (_lock)
            {
                var held = _held.GetValueOrDefault(table);
                current = rows.Select(row => held?.Rows.GetValueOrDefault(row.ScheduledId)).OfType<ClaimedRow>().ToList();
                held?.Pinned.UnionWith(current.Select(row => row.ScheduledId));
            }
        }
        finally
        {
            _turn.Release();
        }
        HashSet<long> kept;
        try
        {
            kept = await statement(current);
        }
        catch
        {
            Unpin(table, current, letGo: false);
            throw;
        }
        Unpin(table, current.Where(row => !kept.Contains(row.ScheduledId)), letGo: true);
        return new Pin(this, table, current.Where(row => kept.Contains(row.ScheduledId)).ToList());
    }

    /// <summary>How many rows this server holds, per table's database (for <c>procyon.scheduler.leased</c>).</summary>
    internal List<(string Database, int Rows)> HeldRows()
    {
        lock (_lock)
        {
            return _held.Select(pair => (pair.Key.Database, pair.Value.Rows.Count)).ToList();
        }
    }

    /// <summary>Stops renewing rows this server no longer runs (a run failed): they run again, anywhere, when their lease ends.</summary>
    public void LetGo(TableSchema table, IEnumerable<ClaimedRow> rows)
    {
        lock (_lock)
        {
            if (_held.GetValueOrDefault(table) is { } held)
            {
                foreach (var row in rows)
                {
                    held.Rows.Remove(row.ScheduledId);
                    held.Pinned.Remove(row.ScheduledId);
                }
                DropIfEmpty(table, held);
            }
        }
    }

    /// <summary>Renews the leases of held rows every third of the shorter lease until the server stops.</summary>
    public async Task RenewAsync(CancellationToken stoppingToken)
    {
        var shorter = Math.Min(options.Value.ReducerLease.Ticks, options.Value.ProcedureLease.Ticks);
        using var timer = new PeriodicTimer(TimeSpan.FromTicks(shorter / 3));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            await MoveAsync(handBack: false, stoppingToken);
        }
    }

    /// <summary>
    /// When the server stops, after its runs ended: makes every row it still holds due now, where
    /// the lease is still its own, and wakes every scheduler, so the rows run elsewhere at once
    /// rather than when their lease would have ended.
    /// </summary>
    public async Task HandBackAsync(CancellationToken cancellationToken)
    {
        var handedBack = await MoveAsync(handBack: true, cancellationToken);
        if (handedBack > 0)
        {
            await store.WakeSchedulersAsync(cancellationToken);
            LogHandedBack(handedBack);
        }
    }

    /// <summary>
    /// One statement per table with held rows that no transaction pins: renews their leases, or
    /// hands them back. Rows whose lease was lost are let go. Returns how many rows moved.
    /// </summary>
    private async Task<int> MoveAsync(bool handBack, CancellationToken cancellationToken)
    {
        await _turn.WaitAsync(cancellationToken);
        try
        {
            var moved = 0;
            foreach (var (table, lease, rows) in Unpinned())
            {
                try
                {
                    // Bounded: a table locked whole must not hold the turn every batch's pin waits for.
                    using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    bounded.CancelAfter(Scheduler.TableQueryTimeout);
                    var ends = await store.MoveLeasesAsync(table, rows, handBack ? TimeSpan.Zero : lease, bounded.Token);
                    moved += rows.Count(row => ends.TryGetValue(row.ScheduledId, out var end) && end != row.LeasedUntil);
                    Renewed(table, rows, handBack ? [] : ends);
                }
                catch (Exception e) when (!cancellationToken.IsCancellationRequested)
                {
                    LogMoveFailed(table.Database, table.Name, e);
                    if (handBack || e is not (NpgsqlException { IsTransient: true } or OperationCanceledException))
                    {
                        // Broken (its runs fail too), or the server is stopping: its rows run when their lease ends.
                        // Otherwise (Postgres failed for a moment, or the table is locked) the next renewal tries again.
                        LetGo(table, rows);
                    }
                }
            }
            return moved;
        }
        finally
        {
            _turn.Release();
        }
    }

    private List<(TableSchema Table, TimeSpan Lease, List<ClaimedRow> Rows)> Unpinned()
    {
        lock (_lock)
        {
            return _held
                .Select(pair => (Table: pair.Key, pair.Value.Lease, Rows: pair.Value.Rows.Values.Where(row => !pair.Value.Pinned.Contains(row.ScheduledId)).ToList()))
                .Where(held => held.Rows.Count > 0)
                .ToList();
        }
    }

    /// <summary>Keeps the new lease ends of the rows moved; lets go of the others. Rows let go meanwhile stay gone.</summary>
    private void Renewed(TableSchema table, List<ClaimedRow> rows, IReadOnlyDictionary<long, DateTime> ends)
    {
        lock (_lock)
        {
            if (_held.GetValueOrDefault(table) is not { } held)
            {
                return;
            }
            foreach (var row in rows.Where(row => held.Rows.GetValueOrDefault(row.ScheduledId)?.LeasedUntil == row.LeasedUntil))
            {
                if (ends.TryGetValue(row.ScheduledId, out var end))
                {
                    held.Rows[row.ScheduledId] = row with { LeasedUntil = end };
                }
                else
                {
                    held.Rows.Remove(row.ScheduledId);
                }
            }
            DropIfEmpty(table, held);
        }
    }

    private void Unpin(TableSchema table, IEnumerable<ClaimedRow> rows, bool letGo)
    {
        if (letGo)
        {
            LetGo(table, rows);
            return;
        }
        lock (_lock)
        {
            _held.GetValueOrDefault(table)?.Pinned.ExceptWith(rows.Select(row => row.ScheduledId));
        }
    }

    /// <summary>Forgets a table that holds nothing, so that an unloaded module's tables do not stay here.</summary>
    private void DropIfEmpty(TableSchema table, HeldTable held)
    {
        if (held.Rows.Count == 0)
        {
            _held.Remove(table);
        }
    }

    public void Dispose() => _turn.Dispose();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not move the leases of scheduled table {Table} of database {Database}")]
    private partial void LogMoveFailed(string database, string table, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Handed back {Count} scheduled rows this server held: they run elsewhere now")]
    private partial void LogHandedBack(int count);

    /// <summary>
    /// Rows a transaction took over from the renewals: it has locked them (a reducer batch) or
    /// finished them (a procedure's row). Disposing gives them back to the renewals, or, once the
    /// transaction committed (<see cref="Finished"/>), lets them go.
    /// </summary>
    public sealed class Pin(LeaseKeeper keeper, TableSchema table, IReadOnlyList<ClaimedRow> rows) : IDisposable
    {
        private bool _finished;

        /// <summary>The rows still under this server's leases, with their current lease ends.</summary>
        public IReadOnlyList<ClaimedRow> Rows { get; } = rows;

        /// <summary>The transaction committed: the rows are done.</summary>
        public void Finished() => _finished = true;

        public void Dispose() => keeper.Unpin(table, Rows, letGo: _finished);
    }

    /// <summary>One table's held rows by id, the lease they were claimed for, and those a transaction pins.</summary>
    private sealed class HeldTable(TimeSpan lease)
    {
        public TimeSpan Lease { get; } = lease;

        public Dictionary<long, ClaimedRow> Rows { get; } = [];

        public HashSet<long> Pinned { get; } = [];
    }
}
