using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Procyon.Storage;
using Procyon.Storage.Tables;

namespace Procyon.Runtime;

/// <summary>
/// This server's side of durable calls: writes sleeping calls, renews the leases of those it
/// holds every third of <see cref="RuntimeOptions.DurableLease"/>, takes over the calls whose
/// lease ended (their server died or stopped) as they come due and wakes them here from their
/// snapshot, and hands back every call it holds when it stops.
/// </summary>
public sealed partial class DurableCalls(DurableCallStore store, IServiceProvider services, IOptions<RuntimeOptions> options, ILogger<DurableCalls> logger) : BackgroundService
{
    private const int ClaimBatch = 100;

    /// <summary>How long before its wake time a call is taken over and restored, so that waking costs only the rewind.</summary>
    internal static readonly TimeSpan RestoreAhead = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>Who holds a lease: this server process.</summary>
    private readonly string _holder = Guid.NewGuid().ToString("N");

    private GroupedWrites<Guid, bool>? _holds;
    private GroupedWrites<(CallEnd End, bool Kept), bool>? _ends;

    /// <summary>The lease renewals of calls waking here, many in one statement when many wake at once.</summary>
    private GroupedWrites<Guid, bool> Holds => LazyInitializer.EnsureInitialized(ref _holds, () => new(ids => store.HoldAsync(ids, _holder, Lease, CancellationToken.None)));

    /// <summary>The ends of durable and kept calls, many in one statement when many end at once.</summary>
    private GroupedWrites<(CallEnd End, bool Kept), bool> Ends => LazyInitializer.EnsureInitialized(ref _ends, () => new(async ends =>
    {
        await store.FinishAsync(ends, _holder, CancellationToken.None);
        return ends.Select(_ => true).ToList();
    }));

    /// <summary>The procedure calls running or sleeping here, by id, for a cancellation to reach.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Guid, CancellableCall> _live = new();

    internal TimeSpan Threshold => options.Value.DurableSleepAfter;

    private TimeSpan Lease => options.Value.DurableLease;

    /// <param name="owner">The owner of the database the call runs on: a call whose database was deleted (or claimed by another) since is not saved.</param>
    internal async Task<bool> SaveAsync(SleepingCall call, Identity? owner)
    {
        try
        {
            return await store.SaveAsync(call, owner?.ToString(), _holder, Lease, CancellationToken.None);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            // The call sleeps on in memory: it just does not survive this server.
            LogSaveFailed(call.Database, call.Function, e.Message);
            return false;
        }
    }

    /// <summary>Whether a snapshot this size is written (else the call sleeps in memory only); logs what it cost.</summary>
    internal bool Admits(CallRequest request, int bytes, TimeSpan took)
    {
        LogSnapshot(request.Database, request.Function, bytes, took.TotalMicroseconds);
        if (bytes <= options.Value.MaxSnapshotBytes)
        {
            return true;
        }
        LogTooLarge(request.Database, request.Function, bytes, options.Value.MaxSnapshotBytes);
        return false;
    }

    /// <summary>
    /// Renews one call's lease as it wakes: false when another server took it over. When Postgres
    /// cannot say, the call goes on here: nobody else can take it over while Postgres is away either.
    /// </summary>
    internal async Task<bool> StillHeldAsync(Guid id)
    {
        try
        {
            return await Holds.WriteAsync(id);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            LogPostgresFailed(e.Message);
            return true;
        }
    }

    /// <summary>Lets a call this server could not wake now (no memory to spare) go, to be tried again shortly.</summary>
    internal Task ReleaseAsync(Guid id) => store.ReleaseAsync(id, _holder, TimeSpan.FromSeconds(1), CancellationToken.None);

    /// <summary>
    /// Starts keeping a call made asynchronously or with an idempotency key; returns null when it
    /// may run, or the call that already holds its key (for the caller to wait on or read).
    /// </summary>
    /// <param name="requestSha256">What the request asked (function and arguments), to tell a retry from another request with the same key.</param>
    public async Task<StoredCall?> KeepAsync(CallRequest request, string? key, string requestSha256, CancellationToken cancellationToken)
    {
        var call = new StoredCall(request.CallId, request.Database, request.Function, request.Caller.ToString(), "running", null, null, DateTimeOffset.UtcNow, null, null, null, requestSha256);
        while (!await store.StartAsync(call, key, _holder, Lease, cancellationToken))
        {
            // The key is taken; the call holding it may have been forgotten since, then claim it again.
            if (await store.FindByKeyAsync(call.Caller, call.Database, key!, cancellationToken) is { } holding)
            {
                return holding;
            }
        }
        return null;
    }

    /// <summary>Registers a call for cancellation by request until disposed; its token also ends with <paramref name="serverToken"/>.</summary>
    internal CancellableCall Track(Guid id, CancellationToken serverToken)
    {
        var call = new CancellableCall(this, id, CancellationTokenSource.CreateLinkedTokenSource(serverToken));
        _live[id] = call;
        return call;
    }

    internal void Forget(Guid id) => _live.TryRemove(id, out _);

    /// <summary>
    /// Cancels a kept or sleeping call by request: it ends as <c>cancelled</c> (its snapshot gone)
    /// and the server running it, wherever it is, stops it at its next suspension. False when it had ended.
    /// </summary>
    public Task<bool> CancelAsync(Guid id, CancellationToken cancellationToken) =>
        store.CancelAsync(id, nameof(CallFailure.CancelledByRequest), CallDispatcher.CancelledByRequestError, cancellationToken);

    /// <summary>Hears every server's cancellations and stops the calls running here, reconnecting as Postgres comes and goes.</summary>
    private async Task ListenForCancelsAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await store.ListenForCancelsAsync(
                    (_, notification) =>
                    {
                        if (Guid.TryParse(notification.Payload, out var id) && _live.TryGetValue(id, out var call))
                        {
                            call.Cancel();
                        }
                    },
                    stoppingToken);
                while (true)
                {
                    await connection.WaitAsync(stoppingToken);
                }
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException)
            {
                LogPostgresFailed(e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Takes over the snapshots of scheduled runs whose rows this server's scheduler leased (a
    /// server that ran them died or stopped), by <c>scheduled_id</c>.
    /// </summary>
    internal async Task<Dictionary<long, SleepingCall>> TakeScheduledAsync(TableSchema table, IReadOnlyList<ClaimedRow> rows, CancellationToken cancellationToken)
    {
        var taken = await store.TakeScheduledAsync(table.Database, table.Name, rows.Select(row => row.ScheduledId).ToArray(), _holder, Lease, cancellationToken);
        foreach (var call in taken)
        {
            ProcyonTelemetry.TakenOver(call.Database, scheduled: true);
        }
        return taken.ToDictionary(call => call.ScheduledId!.Value);
    }

    /// <summary>In the transaction that finishes a scheduled run's row: records how the run ended and drops its snapshot.</summary>
    internal Task FinishScheduledAsync(DatabaseTransaction transaction, CallResult result, TableSchema table, long scheduledId, CancellationToken cancellationToken) =>
        DurableCallStore.FinishScheduledAsync(transaction, EndOf(result), table.Name, scheduledId, _holder, cancellationToken);

    /// <summary>A call's end as Postgres keeps it; a module's error text may hold zero bytes, which a text column refuses.</summary>
    private static CallEnd EndOf(CallResult result) =>
        new(result.CallId, result.Db, result.Fn, result.Caller, result.StartedAt, result.Status,
            result.Failure == CallFailure.None ? null : result.Failure.ToString(), result.Value?.ToString(), result.Error?.Replace('\0', '\uFFFD'));

    /// <summary>A kept call, or null.</summary>
    public Task<StoredCall?> FindAsync(Guid id, CancellationToken cancellationToken) => store.FindAsync(id, cancellationToken);

    /// <summary>Records how a saved or kept call ended, and drops its snapshot, unless another server had taken it over.</summary>
    internal async Task FinishAsync(CallResult result, bool kept)
    {
        try
        {
            await Ends.WriteAsync((EndOf(result), kept));
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            // Its caller has the result; the snapshot stays, held while this server lives.
            LogFinishFailed(result.Db, result.Fn, result.CallId, e.Message);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var listening = ListenForCancelsAsync(stoppingToken);
        var renewed = DateTimeOffset.UtcNow;
        var forgotten = DateTimeOffset.MinValue;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (DateTimeOffset.UtcNow - renewed >= Lease / 3)
                {
                    await store.RenewAsync(_holder, Lease, stoppingToken);
                    await store.ReapAsync(stoppingToken);
                    renewed = DateTimeOffset.UtcNow;
                }
                if (DateTimeOffset.UtcNow - forgotten >= TimeSpan.FromMinutes(1))
                {
                    await store.ForgetAsync(options.Value.CallRetention, stoppingToken);
                    forgotten = DateTimeOffset.UtcNow;
                }
                var claimed = await store.ClaimAsync(_holder, Lease, RestoreAhead, ClaimBatch, stoppingToken);
                foreach (var call in claimed)
                {
                    ProcyonTelemetry.TakenOver(call.Database, scheduled: false);
                    _ = WakeAsync(call, stoppingToken);
                }
                if (claimed.Count == ClaimBatch)
                {
                    // More may be due: a dead server's thousands of calls are taken over without waiting a poll per hundred.
                    continue;
                }
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                LogPostgresFailed(e.Message);
            }
            await Task.Delay(PollInterval, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        await listening;
    }

    /// <summary>Hands every call this server holds back, for another server to wake at its time.</summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        try
        {
            var handed = await store.HandBackAsync(_holder, cancellationToken);
            if (handed > 0)
            {
                LogHandedBack(handed);
            }
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            // Their leases end on their own.
            LogPostgresFailed(e.Message);
        }
    }

    /// <summary>Restores a call taken over at once (it wakes within the lookahead) and runs it at its wake time.</summary>
    private async Task WakeAsync(SleepingCall call, CancellationToken stoppingToken)
    {
        try
        {
            // Resolved here: the dispatcher depends on this service for the calls it makes durable.
            var result = await services.GetRequiredService<CallDispatcher>().ResumeAsync(call, stoppingToken);
            LogResumed(call.Database, call.Function, call.Id, result.Status);
        }
        catch (OperationCanceledException)
        {
            // Stopping: the hand-back lets another server wake it.
        }
        catch (Exception e)
        {
            // Whatever failed, the call must not stay asleep, held and renewed, for ever.
            LogWakeFailed(call.Database, call.Function, call.Id, e);
            var end = new CallEnd(call.Id, call.Database, call.Function, call.Caller, call.StartedAt, "error", nameof(CallFailure.Trapped), null, $"the call could not be woken: {e.Message}");
            await ((Task)Ends.WriteAsync((end, false))).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not wake durable call {Id} of {Database}.{Function}; it ends with an error")]
    private partial void LogWakeFailed(string database, string function, Guid id, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not save the sleeping call of {Database}.{Function}; it sleeps in memory only: {Reason}")]
    private partial void LogSaveFailed(string database, string function, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Snapshot of a sleeping call of {Database}.{Function}: {Bytes} bytes in {Micros} µs")]
    private partial void LogSnapshot(string database, string function, int bytes, double micros);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A sleeping call of {Database}.{Function} sleeps in memory only: its snapshot is {Bytes} bytes, more than Procyon:Runtime:MaxSnapshotBytes ({Limit})")]
    private partial void LogTooLarge(string database, string function, int bytes, long limit);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not record the end of durable call {Id} of {Database}.{Function}: {Reason}")]
    private partial void LogFinishFailed(string database, string function, Guid id, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Durable calls: Postgres failed: {Reason}")]
    private partial void LogPostgresFailed(string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Handed {Count} sleeping durable calls back for other servers to wake")]
    private partial void LogHandedBack(int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "Woke durable call {Id} of {Database}.{Function} from its snapshot: {Status}")]
    private partial void LogResumed(string database, string function, Guid id, string status);
}
