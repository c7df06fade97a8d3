using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Procyon.Sats;
using Procyon.Storage;
using Procyon.Storage.Tables;

namespace Procyon.Runtime.Scheduling;

/// <summary>
/// Runs the rows a scheduler leased, through the general call path of <see cref="CallDispatcher"/>:
/// reducer rows in batches whose transaction finishes them (exactly once), procedure rows outside
/// any transaction and finished after the run (at least once). Results go to subscribers as any
/// call's, with the module's own identity as caller.
/// </summary>
public sealed partial class ScheduledRuns(CallDispatcher dispatcher, DurableCalls durableCalls, Transactions transactions, LeaseKeeper leases, ScheduleHistory history, ILogger<ScheduledRuns> logger)
{
    /// <summary>Runs of a batch of scheduled rows that Postgres could not serialize, before the rows wait for their lease to end.</summary>
    private const int ReducerAttempts = 20;

    /// <summary>
    /// Runs rows of a scheduled table the scheduler leased (and the <see cref="LeaseKeeper"/> holds): a
    /// reducer target with each run in the transaction that deletes (or advances) its row, exactly
    /// once; a procedure target outside any transaction, at least once (its row is finished after
    /// the run). Cron rows the trigger left unarmed are only moved to their first occurrence.
    /// </summary>
    public async Task RunAsync(LoadedModule module, TableSchema table, IReadOnlyList<ClaimedRow> claimed, CancellationToken cancellationToken)
    {
        var retry = module.Description.Tables.First(t => t.Name == table.Name).Retry;
        var scheduled = new ScheduledTarget(module, table, module.Description.Find(table.ScheduledFunction!)!, CallDispatcher.ModuleIdentity(module.Database), retry);
        var unarmed = claimed.Where(row => row.Unarmed).ToList();
        var due = unarmed.Count == 0 ? claimed : claimed.Where(row => !row.Unarmed).ToList();
        var now = DateTime.UtcNow;
        foreach (var row in due)
        {
            ProcyonTelemetry.RowStarted(module.Database, now - row.Due);
        }
        try
        {
            if (unarmed.Count > 0)
            {
                await FinishLeasedAsync(table, unarmed, Ends(scheduled, unarmed, []), null, cancellationToken);
            }
            if (due.Count > 0)
            {
                await (scheduled.Function.Kind == FunctionKind.Procedure
                    ? RunLeasedProceduresAsync(scheduled, table, due, cancellationToken)
                    : RunDueReducersAsync(scheduled, table, due, cancellationToken));
            }
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            // No longer renewed: the rows run again, anywhere, when their leases end. (Stopping hands them back instead.)
            leases.LetGo(table, claimed);
            throw;
        }
    }

    /// <summary>
    /// Runs procedure rows one by one, each outside any transaction; a run that slept past the
    /// durable threshold was saved as a durable call, and a run whose server died or stopped while
    /// it slept is woken from that snapshot here (its row's lease ran out and came here) rather
    /// than started again. The row is finished, and the snapshot dropped, in one transaction.
    /// </summary>
    private async Task RunLeasedProceduresAsync(ScheduledTarget scheduled, TableSchema table, IReadOnlyList<ClaimedRow> claimed, CancellationToken cancellationToken)
    {
        var snapshots = await durableCalls.TakeScheduledAsync(table, claimed, cancellationToken);
        foreach (var row in claimed)
        {
            var snapshot = snapshots.GetValueOrDefault(row.ScheduledId);
            var request = new CallRequest(table.Database, scheduled.Function.Name, ReadOnlyMemory<byte>.Empty, scheduled.Caller, CallOrigin.Schedule)
            {
                CallId = snapshot?.Id ?? Guid.CreateVersion7(),
                ScheduleId = (ulong)row.ScheduledId,
                ScheduledTable = table.Name,
            };
            var startedAt = snapshot?.StartedAt ?? DateTimeOffset.UtcNow;
            var durable = new DurableCall(durableCalls, request, snapshot?.Sha256 ?? scheduled.Module.RunningSha256, scheduled.Module.Owner, startedAt);
            var run = await RunProcedureRowAsync(scheduled, row, request, snapshot, durable, cancellationToken);
            if (run.Failure == CallFailure.Cancelled)
            {
                // Cut short by the shutdown (or another server took its snapshot over): not finished,
                // so its row is handed back, and whoever leases it next wakes it from its last snapshot.
                throw new OperationCanceledException(cancellationToken);
            }
            await durable.SettledAsync();
            var ends = Ends(scheduled, [row], [run]);
            var result = Describe(scheduled, request, run, ends);
            await FinishLeasedAsync(table, [row], ends, (transaction, token) => durableCalls.FinishScheduledAsync(transaction, result, table, row.ScheduledId, token), cancellationToken);
            if (!ends.Retry.ContainsKey(row.ScheduledId))
            {
                dispatcher.Announce(result);
            }
        }
    }

    /// <summary>
    /// Finishes leased rows outside a run's transaction (a procedure's row after its run, cron
    /// rows being armed) and, in the same transaction, does <paramref name="alongside"/> (a
    /// procedure's durable call: its end kept, its snapshot dropped), unless the rows' leases were
    /// lost. Its transaction may read the server-wide durable-call tables, so it may fail to
    /// serialize against another database's: it runs again.
    /// </summary>
    private async Task FinishLeasedAsync(TableSchema table, IReadOnlyList<ClaimedRow> rows, RowEnds ends, Func<DatabaseTransaction, CancellationToken, Task>? alongside, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var transaction = await transactions.BeginAsync(table.Database, cancellationToken);
                using var pin = await leases.PinAsync(table, rows, current => ScheduleStore.FinishAsync(transaction, table, current, fromDue: false, ends, cancellationToken), cancellationToken);
                if (pin.Rows.Count > 0 && alongside is not null)
                {
                    await alongside(transaction, cancellationToken);
                }
                await transaction.CommitAsync(cancellationToken);
                pin.Finished();
                return;
            }
            catch (SerializationFailureException) when (attempt < ReducerAttempts)
            {
                await Transactions.BackoffAsync(table.Database, attempt, cancellationToken);
            }
        }
    }

    /// <summary>Runs a procedure row from its start, or wakes it from <paramref name="snapshot"/>; a cancellation by request reaches it either way.</summary>
    private async Task<ScheduledRun> RunProcedureRowAsync(ScheduledTarget scheduled, ClaimedRow row, CallRequest request, SleepingCall? snapshot, DurableCall durable, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        using var cancellable = durableCalls.Track(request.CallId, cancellationToken);
        var outcome = await cancellable.RunAsync(
            async token => snapshot is not null
                ? await dispatcher.ResumeScheduledAsync(scheduled.Module, snapshot, durable, token)
                : CallDispatcher.Finish(scheduled.Module, scheduled.Function,
                    await dispatcher.RunProcedureAsync(scheduled.Module, scheduled.Function, row.Row, scheduled.Caller, null, UnixTime.ToMicros(DateTimeOffset.UtcNow), durable, token)),
            CallDispatcher.CancelledOutcome);
        if (!cancellable.Cancelled && durable.Lost)
        {
            outcome = (CallFailure.Cancelled, null, "another server took the run over");
        }
        return new ScheduledRun(row.ScheduledId, row.Due, row.Attempts, durable.StartedAt, Stopwatch.GetElapsedTime(started), outcome.Failure, outcome.Value, outcome.Error);
    }

    /// <summary>
    /// Runs the reducer for each leased row in one transaction and finishes the rows in it. The
    /// transaction first locks the rows still under this server's leases, so neither renewals nor
    /// another server's claims move them however long the batch takes. The first try takes no
    /// savepoints; when a run fails, the batch runs again with a savepoint before each row, so the
    /// failed run is undone alone (not run again) and its row still moves on: reported once, not
    /// retried forever. Rows whose lease was lost, or that a run deleted or rescheduled, are dropped
    /// and the rest run again. When Postgres cannot serialize the transaction, nothing of it
    /// happened: the rows run again. When the batch outlives the transaction deadline, nothing of
    /// it happened either, and each row runs in a transaction of its own.
    /// </summary>
    private async Task RunDueReducersAsync(ScheduledTarget scheduled, TableSchema table, IReadOnlyList<ClaimedRow> claimed, CancellationToken cancellationToken)
    {
        IReadOnlyList<ClaimedRow> pending = claimed;
        var failed = new Dictionary<long, ScheduledRun>();
        for (var contention = 0; ;)
        {
            var runs = new List<ScheduledRun>();
            var again = false;
            try
            {
                await using var transaction = await transactions.BeginAsync(table.Database, cancellationToken);
                using var pin = await leases.PinAsync(table, pending, current => ScheduleStore.LockLeasedAsync(transaction, table, current, Scheduler.TableQueryTimeout, cancellationToken), cancellationToken);
                pending = pin.Rows;
                if (pending.Count == 0)
                {
                    return;
                }
                await using var call = transactions.Within(table.Database, transaction, cancellationToken);
                var context = new CallContext(scheduled.Module.Tables, call);
                foreach (var row in pending)
                {
                    if (failed.TryGetValue(row.ScheduledId, out var failure))
                    {
                        runs.Add(failure);
                        continue;
                    }
                    var careful = failed.Count > 0;
                    if (careful)
                    {
                        await call.RunAsync(table.Name, (tx, token) => tx.SaveAsync(token));
                    }
                    var run = await RunScheduledOnceAsync(scheduled, row, context);
                    switch (run.Failure)
                    {
                        case CallFailure.Contention:
                            throw new SerializationFailureException(new InvalidOperationException(run.Error));
                        case CallFailure.TransactionTimeout when pending.Count > 1:
                            throw new TransactionTimeoutException(transactions.Options.TransactionTimeout);
                        case CallFailure.None:
                            break;
                        default:
                            failed[row.ScheduledId] = run;
                            // A run past the deadline left the transaction unusable: finish its row in a new one.
                            if (!careful || run.Failure == CallFailure.TransactionTimeout)
                            {
                                again = true;
                            }
                            else
                            {
                                await call.RunAsync(table.Name, (tx, token) => tx.RollbackToSavedAsync(token));
                            }
                            break;
                    }
                    if (again)
                    {
                        break;
                    }
                    runs.Add(run);
                }
                if (!again)
                {
                    var ends = Ends(scheduled, pending, failed.Values);
                    var finished = await call.RunAsync(table.Name, (tx, token) => ScheduleStore.FinishAsync(tx, table, pending, fromDue: true, ends, token));
                    if (finished.Count == pending.Count)
                    {
                        await call.CommitAsync();
                        pin.Finished();
                        foreach (var run in runs)
                        {
                            CompleteScheduled(scheduled, run, ends);
                        }
                        return;
                    }
                    // A run deleted or rescheduled its own row: it runs again when its lease ends.
                    leases.LetGo(table, pending.Where(row => !finished.Contains(row.ScheduledId)));
                    pending = pending.Where(row => finished.Contains(row.ScheduledId)).ToList();
                }
            }
            catch (SerializationFailureException) when (++contention < ReducerAttempts)
            {
                // Rolled back with the transaction: the rows are still leased here; run them again.
                await Transactions.BackoffAsync(table.Database, contention, cancellationToken);
            }
            catch (TransactionTimeoutException) when (pending.Count > 1)
            {
                // Rolled back: one slow reducer must not keep a whole batch from finishing.
                foreach (var row in pending)
                {
                    await RunDueReducersAsync(scheduled, table, [row], cancellationToken);
                }
                return;
            }
        }
    }

    /// <summary>One run of a scheduled reducer for a leased row, in the batch's transaction that <paramref name="context"/> holds.</summary>
    private static async Task<ScheduledRun> RunScheduledOnceAsync(ScheduledTarget scheduled, ClaimedRow row, CallContext context)
    {
        var startedAt = DateTimeOffset.UtcNow;
        var started = Stopwatch.GetTimestamp();
        var outcome = await CallDispatcher.RunOnInstanceAsync(scheduled.Module, scheduled.Function, row.Row, scheduled.Caller, UnixTime.ToMicros(startedAt), context);
        var (failure, value, error) = CallDispatcher.Finish(scheduled.Module, scheduled.Function, outcome);
        return new ScheduledRun(row.ScheduledId, row.Due, row.Attempts, startedAt, Stopwatch.GetElapsedTime(started), failure, value, error);
    }

    /// <summary>
    /// A run's result, for its subscribers and its durable call's record; a failed run says so
    /// where operators look (as one to be tried again, when <paramref name="ends"/> retries its
    /// row), and the run joins its table's history.
    /// </summary>
    private CallResult Describe(ScheduledTarget scheduled, CallRequest request, ScheduledRun run, RowEnds ends)
    {
        var retryAt = ends.Retry.TryGetValue(run.ScheduledId, out var at) ? at : (DateTime?)null;
        var retrying = retryAt is null ? "" : $" (run {run.Attempts + 1} of {scheduled.Retry!.Retries + 1}; it runs again at {retryAt:O})";
        if (run.Failure != CallFailure.None)
        {
            // Its row is finished all the same once its retries are spent (reported once, not retried forever).
            LogRunFailed(scheduled.Module.Database, scheduled.Function.Name, run.ScheduledId, run.Failure, run.Error + retrying);
        }
        var result = dispatcher.Describe(request, scheduled.Module, scheduled.Function, run.StartedAt, run.Duration, run.Failure, run.Value, run.Error);
        var due = new DateTimeOffset(DateTime.SpecifyKind(run.Due, DateTimeKind.Utc));
        history.Record(scheduled.Table, new ScheduledRunRecord(run.ScheduledId, due, run.StartedAt, Math.Round((run.StartedAt - due).TotalMilliseconds, 3), result.DurationMicros, result.Status, result.Error is null ? null : result.Error + retrying));
        return result;
    }

    /// <summary>
    /// How the rows end besides their run: the next occurrence after now of each cron row (a row
    /// whose expression Cronos refuses is reported once, as a failed run, and left out, as is one
    /// with no occurrence left: their rows are deleted), and, under the table's retry policy, when
    /// the row of each run in <paramref name="failed"/> runs again (none for a run the shutdown cut short).
    /// </summary>
    private RowEnds Ends(ScheduledTarget scheduled, IReadOnlyList<ClaimedRow> rows, IEnumerable<ScheduledRun> failed)
    {
        var next = new Dictionary<long, DateTime>();
        var retry = new Dictionary<long, DateTime>();
        var now = DateTime.UtcNow;
        if (scheduled.Retry is { } policy)
        {
            foreach (var run in failed.Where(run => run.Failure is not (CallFailure.None or CallFailure.Cancelled) && run.Attempts < policy.Retries))
            {
                retry[run.ScheduledId] = policy.RetryAt(now, run.Attempts);
            }
        }
        foreach (var row in rows.Where(row => row.Cron is not null))
        {
            try
            {
                if (CronSchedule.Next(row.Cron!, now) is { } at)
                {
                    next[row.ScheduledId] = at;
                }
            }
            catch (Cronos.CronFormatException e)
            {
                var error = $"scheduled_at is not a cron expression ('{row.Cron}': {e.Message}); the row was deleted";
                LogRunFailed(scheduled.Module.Database, scheduled.Function.Name, row.ScheduledId, CallFailure.BadArguments, error);
                history.Record(scheduled.Table, new ScheduledRunRecord(row.ScheduledId, now, now, 0, 0, "error", error));
            }
        }
        return new RowEnds(next, retry);
    }

    /// <summary>Reports a reducer row's run once its batch committed; one to be tried again reaches no subscriber yet.</summary>
    private void CompleteScheduled(ScheduledTarget scheduled, ScheduledRun run, RowEnds ends)
    {
        var request = new CallRequest(scheduled.Module.Database, scheduled.Function.Name, ReadOnlyMemory<byte>.Empty, scheduled.Caller, CallOrigin.Schedule) { ScheduleId = (ulong)run.ScheduledId };
        var result = Describe(scheduled, request, run, ends);
        if (!ends.Retry.ContainsKey(run.ScheduledId))
        {
            dispatcher.Announce(result);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Scheduled run of {Database}.{Function} (scheduled_id {ScheduledId}) failed ({Failure}): {Error}")]
    private partial void LogRunFailed(string database, string function, long scheduledId, CallFailure failure, string? error);

    /// <summary>What every run of one scheduled table shares: the module, the table, the function its rows name, the module's identity as caller, and how failed runs are tried again.</summary>
    private sealed record ScheduledTarget(LoadedModule Module, TableSchema Table, FunctionDescription Function, Identity Caller, RetryPolicy? Retry);

    /// <param name="Attempts">The row's failed runs before this one.</param>
    private sealed record ScheduledRun(long ScheduledId, DateTime Due, int Attempts, DateTimeOffset StartedAt, TimeSpan Duration, CallFailure Failure, Utf8Json? Value, string? Error);
}
