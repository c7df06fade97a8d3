using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Npgsql;
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
    DurableCalls durableCalls,
    EarlierVersions earlierVersions,
    Outbound.OutboundHttp http,
    IOptions<RuntimeOptions> options)
{
    private static readonly byte[] NoArguments = "[]"u8.ToArray();

    private readonly IResultSink[] _sinks = sinks.ToArray();
    private readonly SemaphoreSlim _slots = new(options.Value.MaxConcurrentCalls);
    private int _queued;

    /// <param name="cancellationToken">Ends sleeping calls early; pass the server's shutdown token, not a request's.</param>
    public async Task<CallResult> CallAsync(CallRequest request, CancellationToken cancellationToken)
    {
        using var activity = ProcyonTelemetry.StartCall(request);
        ProcyonTelemetry.Admitted(request.Origin);
        try
        {
            return await CallNowAsync(request, cancellationToken);
        }
        finally
        {
            ProcyonTelemetry.Left(request.Origin);
        }
    }

    private async Task<CallResult> CallNowAsync(CallRequest request, CancellationToken cancellationToken)
    {
        var startedAt = DateTimeOffset.UtcNow;
        var started = Stopwatch.GetTimestamp();
        var module = registry.Find(request.Database);
        var function = module?.Description.Find(request.Function);
        var durable = module is not null && function?.Kind == FunctionKind.Procedure ? new DurableCall(durableCalls, request, module.RunningSha256, module.Owner, startedAt) : null;
        // A procedure that may be kept can be cancelled by request (DELETE /v1/calls/{id}) at its next suspension.
        using var cancellable = durable is not null ? durableCalls.Track(request.CallId, cancellationToken) : null;
        Func<CancellationToken, Task<(CallFailure Failure, Utf8Json? Value, string? Error)>> run =
            token => RunAsync(request, module, function, UnixTime.ToMicros(startedAt), durable, token);
        var (failure, value, error) = cancellable is null ? await run(cancellationToken) : await cancellable.RunAsync(run, CancelledOutcome);
        return await CompleteAsync(request, module, function, startedAt, Stopwatch.GetElapsedTime(started), durable, failure, value, error);
    }

    /// <summary>
    /// Wakes a durable call this server took over (its server died or stopped) from its snapshot,
    /// at its wake time, and ends it as it would have ended there: result to the sinks and to
    /// <c>procyon.calls</c>.
    /// </summary>
    internal async Task<CallResult> ResumeAsync(Storage.SleepingCall call, CancellationToken cancellationToken)
    {
        var request = new CallRequest(call.Database, call.Function, ReadOnlyMemory<byte>.Empty, Identity.Parse(call.Caller), call.Origin) { CallId = call.Id };
        var module = registry.Find(call.Database);
        var durable = new DurableCall(durableCalls, request, call.Sha256, module?.Owner, call.StartedAt);
        using var cancellable = durableCalls.Track(call.Id, cancellationToken);
        var (failure, value, error, notNow) = await cancellable.RunAsync(
            token => ResumeOnVersionAsync(module, call, durable, token), (CancelledOutcome.Failure, CancelledOutcome.Value, CancelledOutcome.Error, false));
        if (notNow)
        {
            // Nothing of it ran here: another server, or this one shortly, wakes it (and counts it then).
            await durableCalls.ReleaseAsync(call.Id);
            return NotRun(request, failure, error!);
        }
        return await CompleteAsync(request, module, module?.Description.Find(call.Function), call.StartedAt, DateTimeOffset.UtcNow - call.StartedAt, durable, failure, value, error, taken: true);
    }

    /// <summary>
    /// Wakes a scheduled run of <paramref name="current"/>'s database from its snapshot, which its
    /// scheduler took over with the row's lease. Throws <see cref="Storage.OverloadedException"/>
    /// when it cannot start here for want of room: the row waits for its lease to end.
    /// </summary>
    internal async Task<(CallFailure Failure, Utf8Json? Value, string? Error)> ResumeScheduledAsync(LoadedModule current, Storage.SleepingCall call, DurableCall durable, CancellationToken cancellationToken)
    {
        try
        {
            var (failure, value, error, notNow) = await ResumeOnVersionAsync(current, call, durable, cancellationToken);
            return notNow ? throw new Storage.OverloadedException(error!) : (failure, value, error);
        }
        catch (ModuleRejectedException e)
        {
            // The code it slept in no longer loads: the run ends, rather than its row coming back for ever.
            return (CallFailure.Trapped, null, $"the call could not be woken: {e.Message}");
        }
    }

    private Task<(CallFailure Failure, Utf8Json? Value, string? Error, bool NotNow)> ResumeOnVersionAsync(
        LoadedModule? current, Storage.SleepingCall call, DurableCall durable, CancellationToken cancellationToken) =>
        current is null || current.RunningSha256 == call.Sha256
            ? ResumeOnInstanceAsync(current, call, durable, cancellationToken)
            // Republished (or optimized) since it went to sleep: it wakes on the code it slept in.
            : earlierVersions.WithVersionAsync(current, call.Sha256, earlier => ResumeOnInstanceAsync(earlier, call, durable, cancellationToken), cancellationToken);

    /// <summary>Restores a call on <paramref name="module"/> shortly before its wake time and runs it from there.</summary>
    /// <returns>How the call ended, or <c>NotNow</c> when it could not start here for want of room (nothing of it ran).</returns>
    private async Task<(CallFailure Failure, Utf8Json? Value, string? Error, bool NotNow)> ResumeOnInstanceAsync(
        LoadedModule? module, Storage.SleepingCall call, DurableCall durable, CancellationToken cancellationToken)
    {
        if (module?.Description.Find(call.Function) is not { } function)
        {
            return (CallFailure.UnknownFunction, null, $"database '{call.Database}' was deleted, or the code the call went to sleep in is no longer kept, so it cannot wake", false);
        }
        // A scheduled run is taken over when its row's lease ends, maybe long before it wakes: no memory is held meanwhile.
        await SleepDurablyAsync(call.Database, call.WakeAt - DurableCalls.RestoreAhead, cancellationToken);
        if (!await EnterAsync(call.Database, cancellationToken))
        {
            return (CallFailure.Overloaded, null, "the server is running and queueing as many calls as it may", true);
        }
        try
        {
            var snapshot = CallSnapshot.Read(call.Snapshot);
            await using var transaction = transactions.ForProcedure(module.Database, cancellationToken);
            ModuleInstance instance;
            try
            {
                instance = module.CreateFresh();
            }
            catch (Storage.OverloadedException e)
            {
                return (CallFailure.Overloaded, null, e.Message, true);
            }
            try
            {
                try
                {
                    instance.Restore(snapshot);
                }
                catch (Storage.OverloadedException e)
                {
                    // Refused before the rewind (the budget had not room for its memory).
                    return (CallFailure.Overloaded, null, e.Message, true);
                }
                // Restored ahead (the claim looks a little ahead), so waking costs only the rewind; never before its time.
                var woke = await SleepDurablyAsync(call.Database, call.WakeAt, cancellationToken);
                var outcome = await instance.RunAsync(snapshot.FunctionId, snapshot.Arguments, Identity.Parse(call.Caller), snapshot.TimestampMicros, new CallContext(module.Tables, transaction, durable, http), woke);
                var (failure, value, error) = Finish(module, function, outcome);
                return (failure, value, error, false);
            }
            finally
            {
                module.Return(instance);
            }
        }
        catch (InvalidDataException e)
        {
            return (CallFailure.Trapped, null, $"the call's snapshot cannot be restored: {e.Message}", false);
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>A durable call of <paramref name="database"/> taken over here sleeps until <paramref name="wakeAt"/>, in Postgres (no instance holds it); returns the time of waking.</summary>
    private static async Task<long> SleepDurablyAsync(string database, DateTimeOffset wakeAt, CancellationToken cancellationToken)
    {
        using (ProcyonTelemetry.Sleeping(database, durable: true))
        {
            return await ModuleInstance.SleepAsync(UnixTime.ToMicros(wakeAt), cancellationToken);
        }
    }

    /// <summary>
    /// Ends a call: its result goes to the sinks, and a durable or kept call's to <c>procyon.calls</c>. A
    /// durable call that another server took over, or that this one handed back as it stopped,
    /// ends elsewhere: nobody hears of it from here.
    /// </summary>
    /// <param name="taken">The call was taken over from a snapshot, so it is in Postgres whatever this run saved.</param>
    private async Task<CallResult> CompleteAsync(
        CallRequest request, LoadedModule? module, FunctionDescription? function, DateTimeOffset startedAt, TimeSpan duration,
        DurableCall? durable, CallFailure failure, Utf8Json? value, string? error, bool taken = false)
    {
        if (durable is not null)
        {
            await durable.SettledAsync();
        }
        var slept = durable is not null && (taken || durable.Saved);
        if (slept && (durable!.Lost || failure == CallFailure.Cancelled))
        {
            var where = durable.Lost ? "another server took this durable call over" : "the server is shutting down; this durable call sleeps on in Postgres and another server wakes it";
            return Refuse(request, CallFailure.Cancelled, $"{where}: its result will be at GET /v1/calls/{request.CallId}");
        }
        var result = Complete(request, module, function, startedAt, duration, failure, value, error);
        if (slept || request.Kept)
        {
            await durableCalls.FinishAsync(result, request.Kept);
        }
        return result;
    }

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
        return ProcyonTelemetry.Ended(Result(request, ResultAudience.Of(module, init, publisher), startedAt, Stopwatch.GetElapsedTime(started), failure, value, error));
    }

    /// <summary>The database or function a call names that is not there (404), or null when both are.</summary>
    public static (CallFailure Failure, string Error)? Missing(string database, string functionName, LoadedModule? module, FunctionDescription? function) =>
        module is null ? (CallFailure.UnknownDatabase, $"no database named '{database}' is published")
        : function is null ? (CallFailure.UnknownFunction, $"database '{database}' has no function named '{functionName}'")
        : null;

    /// <summary>The error of a call cancelled by <c>DELETE /v1/calls/{id}</c>.</summary>
    public const string CancelledByRequestError = "the call was cancelled by request (DELETE /v1/calls/{id})";

    /// <summary>How a call cancelled by request ends where it ran: that server hears that the call was cancelled, not by what.</summary>
    internal static readonly (CallFailure Failure, Utf8Json? Value, string? Error) CancelledOutcome =
        (CallFailure.CancelledByRequest, null, "the call was cancelled (by DELETE /v1/calls/{id}, or by a republish with ?cancelSleeping=true); GET /v1/calls/{id} says which");

    /// <summary>The result a kept call ended with, for a retry that waited for it (nobody else hears of it again).</summary>
    public static CallResult Kept(CallRequest request, string status, string? value, CallFailure failure, string? error, DateTimeOffset startedAt) =>
        status == "ok"
            ? Result(request, ResultAudience.Nobody, startedAt, TimeSpan.Zero, CallFailure.None, new Utf8Json(System.Text.Encoding.UTF8.GetBytes(value ?? "null")), null)
            : Result(request, ResultAudience.Nobody, startedAt, TimeSpan.Zero, failure, null, error);

    /// <summary>The result of a call refused before it ran (so nobody else hears of it).</summary>
    public static CallResult Refuse(CallRequest request, CallFailure failure, string error) =>
        ProcyonTelemetry.Ended(NotRun(request, failure, error));

    /// <summary>A result for a call that did not run, counted nowhere (a refusal counts it through <see cref="Refuse"/>).</summary>
    private static CallResult NotRun(CallRequest request, CallFailure failure, string error) =>
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
    internal CallResult Complete(CallRequest request, LoadedModule? module, FunctionDescription? function, DateTimeOffset startedAt, TimeSpan duration, CallFailure failure, Utf8Json? value, string? error)
    {
        var result = Describe(request, module, function, startedAt, duration, failure, value, error);
        if (result.Audience != ResultAudience.Nobody)
        {
            Announce(result);
        }
        return result;
    }

    /// <summary>The result of a call, for <see cref="Announce"/> later (after a transaction that it depends on commits).</summary>
    internal CallResult Describe(CallRequest request, LoadedModule? module, FunctionDescription? function, DateTimeOffset startedAt, TimeSpan duration, CallFailure failure, Utf8Json? value, string? error) =>
        ProcyonTelemetry.Ended(Result(request, Listened(request.Database) ? ResultAudience.Of(module, function, request.Caller) : ResultAudience.Nobody, startedAt, duration, failure, value, error));

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
            CallId = request.CallId,
            Db = request.Database,
            Fn = request.Function,
            Origin = request.Origin,
            ScheduleId = request.ScheduleId,
            Status = failure switch
            {
                CallFailure.None => "ok",
                CallFailure.Timeout or CallFailure.TransactionTimeout => "timeout",
                CallFailure.CancelledByRequest => "cancelled",
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
        DurableCall? durable,
        CancellationToken cancellationToken)
    {
        if (module is null || function is null)
        {
            var (missing, detail) = Missing(request.Database, request.Function, module, function)!.Value;
            return (missing, null, detail);
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
        if (function.Lifecycle is { } lifecycle && !request.Lifecycle)
        {
            return (CallFailure.BadArguments, null, $"'{request.Function}' is the {lifecycle.Name} reducer; it runs only when {lifecycle.When}");
        }
        if (!engine.Memory.MakeRoom())
        {
            return (CallFailure.Overloaded, null, engine.Memory.Refuse(request.Database));
        }
        var (lease, refused, why) = limits.Enter(request);
        using (lease)
        {
            if (lease is null)
            {
                return (refused, null, why);
            }
            if (!await EnterAsync(request.Database, cancellationToken))
            {
                return (CallFailure.Overloaded, null,
                    $"the server is running {options.Value.MaxConcurrentCalls} calls and has {options.Value.MaxQueuedCalls} more waiting; try again shortly");
            }
            InstanceOutcome outcome;
            try
            {
                outcome = function.Kind == FunctionKind.Procedure
                    ? await RunProcedureAsync(module, function, arguments.WrittenMemory, request.Caller, request.ConnectionId, timestampMicros, durable, cancellationToken)
                    : await RunReducerAsync(module, function, arguments.WrittenMemory, request.Caller, request.ConnectionId, timestampMicros, cancellationToken);
            }
            finally
            {
                _slots.Release();
            }
            return Finish(module, function, outcome);
        }
    }

    internal static (CallFailure Failure, Utf8Json? Value, string? Error) Finish(LoadedModule module, FunctionDescription function, InstanceOutcome outcome)
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

    /// <param name="durable">The call's identity in Postgres, should it sleep long; null for a call that never outlives this server.</param>
    /// <param name="connectionId">The hub connection the call came over, if any.</param>
    internal async Task<InstanceOutcome> RunProcedureAsync(LoadedModule module, FunctionDescription function, ReadOnlyMemory<byte> arguments, Identity caller, UInt128? connectionId, long timestampMicros, DurableCall? durable, CancellationToken cancellationToken)
    {
        // Disposing rolls back a transaction the procedure left open (it trapped inside with_tx).
        await using var transaction = transactions.ForProcedure(module.Database, cancellationToken);
        return await RunOnInstanceAsync(module, function, arguments, caller, timestampMicros, new CallContext(module.Tables, transaction, durable, http) { ConnectionId = connectionId });
    }

    private Task<InstanceOutcome> RunReducerAsync(LoadedModule module, FunctionDescription function, ReadOnlyMemory<byte> arguments, Identity caller, UInt128? connectionId, long timestampMicros, CancellationToken cancellationToken) =>
        transactions.RunReducerAsync(
            module.Database,
            transaction => RunOnInstanceAsync(module, function, arguments, caller, timestampMicros, new CallContext(module.Tables, transaction) { ConnectionId = connectionId }),
            cancellationToken);

    internal static async Task<InstanceOutcome> RunOnInstanceAsync(LoadedModule module, FunctionDescription function, ReadOnlyMemory<byte> arguments, Identity caller, long timestampMicros, CallContext context)
    {
        ModuleInstance instance;
        try
        {
            instance = module.Rent();
        }
        catch (Storage.OverloadedException e)
        {
            return InstanceOutcome.Failed(CallFailure.Overloaded, e.Message);
        }
        try
        {
            return await instance.RunAsync(function.Id, arguments, caller, timestampMicros, context);
        }
        finally
        {
            module.Return(instance);
        }
    }

    /// <summary>Takes a running slot for a call of <paramref name="database"/>, waiting in the bounded queue if need be; false (the call is shed) when the queue is full.</summary>
    private async ValueTask<bool> EnterAsync(string database, CancellationToken cancellationToken)
    {
        if (_slots.Wait(0))
        {
            return true;
        }
        if (Interlocked.Increment(ref _queued) > options.Value.MaxQueuedCalls)
        {
            Interlocked.Decrement(ref _queued);
            ProcyonTelemetry.Refused(database, ProcyonTelemetry.ShedReason.Queue);
            return false;
        }
        try
        {
            using (ProcyonTelemetry.QueuedForSlot())
            {
                await _slots.WaitAsync(cancellationToken);
            }
            return true;
        }
        finally
        {
            Interlocked.Decrement(ref _queued);
        }
    }
}
