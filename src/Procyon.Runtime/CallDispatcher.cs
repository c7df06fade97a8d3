using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Npgsql;
using Procyon.Runtime.Scheduling;
using Procyon.Storage.Tables;
using Procyon.Sats;

namespace Procyon.Runtime;

/// <summary>Receives the results of calls that someone may listen to, whoever made the call (the SignalR hub publishes them).</summary>
public interface IResultSink
{
    /// <summary>Whether a result of <paramref name="database"/> may reach anyone; if no sink says so, nobody hears of it.</summary>
    bool Listens(string database);

    /// <summary>Must not block: the caller is waiting for its response.</summary>
    void Publish(CallResult result);
}

/// <summary>
/// The one path of a call for HTTP, the hub and the scheduler: JSON arguments → BSATN → an
/// instance of the module → BSATN result → JSON, then the result goes to every sink.
/// </summary>
public sealed class CallDispatcher(
    ModuleRegistry registry,
    IEnumerable<IResultSink> sinks,
    Transactions transactions,
    CallLimits limits,
    WasmEngine engine,
    IOptions<RuntimeOptions> options)
{
    /// <summary>Runs of a batch of scheduled rows that Postgres could not serialize, before the rows wait for their lease to end.</summary>
    private const int ReducerAttempts = 20;

    private static readonly byte[] NoArguments = "[]"u8.ToArray();

    private readonly IResultSink[] _sinks = sinks.ToArray();
    private readonly SemaphoreSlim _slots = new(options.Value.MaxConcurrentCalls);
    private int _queued;

    /// <param name="cancellationToken">Ends sleeping calls early; pass the server's shutdown token, not a request's.</param>
    public async Task<CallResult> CallAsync(CallRequest request, CancellationToken cancellationToken)
    {
        var startedAt = DateTimeOffset.UtcNow;
        var started = Stopwatch.GetTimestamp();
        var module = registry.Find(request.Database);
        var function = module?.Description.Find(request.Function);
        var (failure, value, error) = await RunAsync(request, module, function, UnixTime.ToMicros(startedAt), cancellationToken);
        return Complete(request, module, function, startedAt, Stopwatch.GetElapsedTime(started), failure, value, error);
    }

    /// <summary>
    /// Runs rows of a scheduled table the scheduler leased (and <paramref name="leases"/> holds): a
    /// reducer target with each run in the transaction that deletes (or advances) its row, exactly
    /// once; a procedure target outside any transaction, at least once (its row is finished after
    /// the run).
    /// </summary>
    public async Task RunScheduledAsync(LoadedModule module, TableSchema table, IReadOnlyList<ClaimedRow> claimed, LeaseKeeper leases, CancellationToken cancellationToken)
    {
        var scheduled = new ScheduledTarget(module, module.Description.Find(table.ScheduledFunction!)!, ModuleIdentity(module.Database));
        try
        {
            await (scheduled.Function.Kind == FunctionKind.Procedure
                ? RunLeasedProceduresAsync(scheduled, table, claimed, leases, cancellationToken)
                : RunDueReducersAsync(scheduled, table, claimed, leases, cancellationToken));
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            // No longer renewed: the rows run again, anywhere, when their leases end. (Stopping hands them back instead.)
            leases.LetGo(table, claimed);
            throw;
        }
    }

    private async Task RunLeasedProceduresAsync(ScheduledTarget scheduled, TableSchema table, IReadOnlyList<ClaimedRow> claimed, LeaseKeeper leases, CancellationToken cancellationToken)
    {
        foreach (var row in claimed)
        {
            var run = await RunScheduledOnceAsync(scheduled, row, context: null, cancellationToken);
            if (run.Outcome.Failure == CallFailure.Cancelled)
            {
                // Cut short by the shutdown: not finished, so its row is handed back and runs again elsewhere.
                throw new OperationCanceledException(cancellationToken);
            }
            await using (var transaction = await transactions.BeginAsync(table.Database, cancellationToken))
            {
                using var pin = await leases.PinAsync(table, [row], current => transaction.FinishScheduledAsync(table, current, fromDue: false, cancellationToken), cancellationToken);
                await transaction.CommitAsync(cancellationToken);
                pin.Finished();
            }
            CompleteScheduled(scheduled, run);
        }
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
    private async Task RunDueReducersAsync(ScheduledTarget scheduled, TableSchema table, IReadOnlyList<ClaimedRow> claimed, LeaseKeeper leases, CancellationToken cancellationToken)
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
                using var pin = await leases.PinAsync(table, pending, current => transaction.LockLeasedAsync(table, current, cancellationToken), cancellationToken);
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
                    var run = await RunScheduledOnceAsync(scheduled, row, context, cancellationToken);
                    switch (run.Outcome.Failure)
                    {
                        case CallFailure.Contention:
                            throw new SerializationFailureException(new InvalidOperationException(run.Outcome.Error));
                        case CallFailure.TransactionTimeout when pending.Count > 1:
                            throw new TransactionTimeoutException(transactions.Options.TransactionTimeout);
                        case CallFailure.None:
                            break;
                        default:
                            failed[row.ScheduledId] = run;
                            // A run past the deadline left the transaction unusable: finish its row in a new one.
                            if (!careful || run.Outcome.Failure == CallFailure.TransactionTimeout)
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
                    var finished = await call.RunAsync(table.Name, (tx, token) => tx.FinishScheduledAsync(table, pending, fromDue: true, token));
                    if (finished.Count == pending.Count)
                    {
                        await call.CommitAsync();
                        pin.Finished();
                        foreach (var run in runs)
                        {
                            CompleteScheduled(scheduled, run);
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
                await Transactions.BackoffAsync(contention, cancellationToken);
            }
            catch (TransactionTimeoutException) when (pending.Count > 1)
            {
                // Rolled back: one slow reducer must not keep a whole batch from finishing.
                foreach (var row in pending)
                {
                    await RunDueReducersAsync(scheduled, table, [row], leases, cancellationToken);
                }
                return;
            }
        }
    }

    /// <summary>One run of a scheduled function for a leased row; a reducer's <paramref name="context"/> holds the batch's transaction.</summary>
    private async Task<ScheduledRun> RunScheduledOnceAsync(ScheduledTarget scheduled, ClaimedRow row, CallContext? context, CancellationToken cancellationToken)
    {
        var startedAt = DateTimeOffset.UtcNow;
        var started = Stopwatch.GetTimestamp();
        var micros = UnixTime.ToMicros(startedAt);
        var outcome = context is null
            ? await RunProcedureAsync(scheduled.Module, scheduled.Function, row.Row, scheduled.Caller, micros, cancellationToken)
            : await RunOnInstanceAsync(scheduled.Module, scheduled.Function, row.Row, scheduled.Caller, micros, context);
        return new ScheduledRun(row.ScheduledId, startedAt, Stopwatch.GetElapsedTime(started), outcome);
    }

    private void CompleteScheduled(ScheduledTarget scheduled, ScheduledRun run)
    {
        var request = new CallRequest(scheduled.Module.Database, scheduled.Function.Name, ReadOnlyMemory<byte>.Empty, scheduled.Caller, CallOrigin.Schedule) { ScheduleId = (ulong)run.ScheduledId };
        var (failure, value, error) = Finish(scheduled.Module, scheduled.Function, run.Outcome);
        Complete(request, scheduled.Module, scheduled.Function, run.StartedAt, run.Duration, failure, value, error);
    }

    /// <summary>What every run of one scheduled table shares: the module, the function its rows name, and the module's identity as caller.</summary>
    private sealed record ScheduledTarget(LoadedModule Module, FunctionDescription Function, Identity Caller);

    private sealed record ScheduledRun(long ScheduledId, DateTimeOffset StartedAt, TimeSpan Duration, InstanceOutcome Outcome);

    /// <summary>Scheduled runs are made by the module itself: an identity derived from the database name.</summary>
    public static Identity ModuleIdentity(string database) =>
        new(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes("procyon module " + database)));

    /// <summary>
    /// Runs a module's init reducer in the transaction of the publish that created its tables,
    /// as the publisher. Its result is announced (<see cref="Announce"/>) only if the publish commits.
    /// </summary>
    internal async Task<CallResult> RunInitAsync(LoadedModule module, FunctionDescription init, Identity publisher, DatabaseTransaction transaction, CancellationToken cancellationToken)
    {
        var request = new CallRequest(module.Database, init.Name, ReadOnlyMemory<byte>.Empty, publisher, CallOrigin.Init);
        var startedAt = DateTimeOffset.UtcNow;
        var started = Stopwatch.GetTimestamp();
        await using var call = transactions.Within(module.Database, transaction, cancellationToken);
        var outcome = await RunOnInstanceAsync(module, init, ReadOnlyMemory<byte>.Empty, publisher, UnixTime.ToMicros(startedAt), new CallContext(module.Tables, call));
        var (failure, value, error) = Finish(module, init, outcome);
        return Result(request, ResultAudience.Of(module, init, publisher), startedAt, Stopwatch.GetElapsedTime(started), failure, value, error);
    }

    /// <summary>The result of a call refused before it ran (so nobody else hears of it).</summary>
    public static CallResult Refuse(CallRequest request, CallFailure failure, string error) =>
        Result(request, ResultAudience.Nobody, DateTimeOffset.UtcNow, TimeSpan.Zero, failure, null, error);

    /// <summary>Sends a result to every sink that listens to its database (the hub's subscribers).</summary>
    internal void Announce(CallResult result)
    {
        foreach (var sink in _sinks)
        {
            if (sink.Listens(result.Db))
            {
                sink.Publish(result);
            }
        }
    }

    /// <summary>The result of a call that ran (or failed to); who may see it is worked out only when someone listens.</summary>
    private CallResult Complete(CallRequest request, LoadedModule? module, FunctionDescription? function, DateTimeOffset startedAt, TimeSpan duration, CallFailure failure, Utf8Json? value, string? error)
    {
        var listened = Listened(request.Database);
        var result = Result(request, listened ? ResultAudience.Of(module, function, request.Caller) : ResultAudience.Nobody, startedAt, duration, failure, value, error);
        if (listened)
        {
            Announce(result);
        }
        return result;
    }

    private bool Listened(string database)
    {
        foreach (var sink in _sinks)
        {
            if (sink.Listens(database))
            {
                return true;
            }
        }
        return false;
    }

    private static CallResult Result(CallRequest request, ResultAudience audience, DateTimeOffset startedAt, TimeSpan duration, CallFailure failure, Utf8Json? value, string? error) =>
        new()
        {
            RequestId = request.RequestId,
            Db = request.Database,
            Fn = request.Function,
            Origin = request.Origin,
            ScheduleId = request.ScheduleId,
            Status = failure switch
            {
                CallFailure.None => "ok",
                CallFailure.Timeout or CallFailure.TransactionTimeout => "timeout",
                _ => "error",
            },
            Value = value,
            Error = error,
            StartedAt = startedAt,
            DurationMicros = (long)duration.TotalMicroseconds,
            Caller = request.Caller.ToString(),
            Failure = failure,
            Audience = audience,
        };

    private async Task<(CallFailure Failure, Utf8Json? Value, string? Error)> RunAsync(
        CallRequest request,
        LoadedModule? module,
        FunctionDescription? function,
        long timestampMicros,
        CancellationToken cancellationToken)
    {
        if (module is null)
        {
            return (CallFailure.UnknownDatabase, null, $"no database named '{request.Database}' is published");
        }
        if (function is null)
        {
            return (CallFailure.UnknownFunction, null, $"database '{request.Database}' has no function named '{request.Function}'");
        }
        var typespace = module.Description.Typespace;
        var arguments = new BsatnWriter();
        try
        {
            using var json = JsonDocument.Parse(request.ArgumentsJson.IsEmpty ? NoArguments : request.ArgumentsJson, ValueLimits.DocumentOptions);
            JsonToBsatn.WriteArguments(json.RootElement, function.Parameters, typespace, arguments);
        }
        catch (JsonException e)
        {
            return (CallFailure.BadArguments, null, $"the arguments are not valid JSON: {e.Message}");
        }
        catch (ValueConversionException e)
        {
            return (CallFailure.BadArguments, null, e.Message);
        }
        if (function.Kind == FunctionKind.InitReducer)
        {
            return (CallFailure.BadArguments, null, $"'{request.Function}' is the init reducer; it runs only when the database is first published");
        }
        if (!HasMemoryForCall())
        {
            return (CallFailure.Overloaded, null, engine.Memory.Refusal);
        }
        var (lease, refused, why) = limits.Enter(request);
        using (lease)
        {
            if (lease is null)
            {
                return (refused, null, why);
            }
            if (!await EnterAsync(cancellationToken))
            {
                return (CallFailure.Overloaded, null,
                    $"the server is running {options.Value.MaxConcurrentCalls} calls and has {options.Value.MaxQueuedCalls} more waiting; try again shortly");
            }
            InstanceOutcome outcome;
            try
            {
                outcome = function.Kind == FunctionKind.Procedure
                    ? await RunProcedureAsync(module, function, arguments.WrittenMemory, request.Caller, timestampMicros, cancellationToken)
                    : await RunReducerAsync(module, function, arguments.WrittenMemory, request.Caller, timestampMicros, cancellationToken);
            }
            finally
            {
                _slots.Release();
            }
            return Finish(module, function, outcome);
        }
    }

    private static (CallFailure Failure, Utf8Json? Value, string? Error) Finish(LoadedModule module, FunctionDescription function, InstanceOutcome outcome)
    {
        if (outcome.Failure != CallFailure.None)
        {
            return (outcome.Failure, null, outcome.Error);
        }
        var typespace = module.Description.Typespace;
        try
        {
            // Written once: HTTP and the hub send these bytes as they are.
            return (CallFailure.None, new Utf8Json(BsatnToJson.Convert(outcome.Output, function.ReturnType, typespace)), null);
        }
        catch (InvalidDataException e)
        {
            return (CallFailure.Trapped, null, $"the host cannot take the module's result as a {typespace.Describe(function.ReturnType)}: {e.Message}");
        }
    }

    private async Task<InstanceOutcome> RunProcedureAsync(LoadedModule module, FunctionDescription function, ReadOnlyMemory<byte> arguments, Identity caller, long timestampMicros, CancellationToken cancellationToken)
    {
        // Disposing rolls back a transaction the procedure left open (it trapped inside with_tx).
        await using var transaction = transactions.ForProcedure(module.Database, cancellationToken);
        return await RunOnInstanceAsync(module, function, arguments, caller, timestampMicros, new CallContext(module.Tables, transaction));
    }

    private Task<InstanceOutcome> RunReducerAsync(LoadedModule module, FunctionDescription function, ReadOnlyMemory<byte> arguments, Identity caller, long timestampMicros, CancellationToken cancellationToken) =>
        transactions.RunReducerAsync(
            module.Database,
            transaction => RunOnInstanceAsync(module, function, arguments, caller, timestampMicros, new CallContext(module.Tables, transaction)),
            cancellationToken);

    private static async Task<InstanceOutcome> RunOnInstanceAsync(LoadedModule module, FunctionDescription function, ReadOnlyMemory<byte> arguments, Identity caller, long timestampMicros, CallContext context)
    {
        var instance = module.Rent();
        try
        {
            return await instance.RunAsync(function.Id, arguments, caller, timestampMicros, context);
        }
        finally
        {
            module.Return(instance);
        }
    }

    /// <summary>Whether the memory budget has room for another call, after dropping idle instances if need be.</summary>
    private bool HasMemoryForCall()
    {
        if (engine.Memory.HasRoom)
        {
            return true;
        }
        foreach (var module in registry.All)
        {
            module.DropIdle();
        }
        return engine.Memory.HasRoom;
    }

    /// <summary>Takes a running slot, waiting in the bounded queue if need be; false when the queue is full.</summary>
    private async ValueTask<bool> EnterAsync(CancellationToken cancellationToken)
    {
        if (_slots.Wait(0))
        {
            return true;
        }
        if (Interlocked.Increment(ref _queued) > options.Value.MaxQueuedCalls)
        {
            Interlocked.Decrement(ref _queued);
            return false;
        }
        try
        {
            await _slots.WaitAsync(cancellationToken);
            return true;
        }
        finally
        {
            Interlocked.Decrement(ref _queued);
        }
    }
}
